"""The test suites can run in one pytest process as well as one per package.

pytest's default ("prepend") import mode puts each test directory on ``sys.path`` and
imports its modules under their bare file names, so two test modules -- or two helper
modules -- with the same name in different suites collide, and ``from conftest import``
reads whichever suite's conftest.py was imported last.  Helpers live in modules with
suite-unique names (e.g. ``tnas_helpers.py``) or are fixtures.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITES = [ROOT / "tests", *sorted((ROOT / "plugins").glob("*/tests")), *sorted((ROOT / "docs" / "examples").glob("*/tests"))]


def _modules():
    return [p for suite in SUITES for p in suite.rglob("*.py") if "__pycache__" not in p.parts]


def test_suites_are_found():
    assert len(SUITES) >= 7, SUITES  # core, five plugins, the example plugin
    assert all(any(s.glob("test_*.py")) for s in SUITES)


def test_module_names_are_unique_across_suites():
    counts = Counter(p.name for p in _modules() if p.name not in ("conftest.py", "__init__.py"))
    assert not [name for name, n in counts.items() if n > 1]


def test_no_test_module_imports_conftest():
    offenders = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "conftest" or n.startswith("conftest.") for n in names):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders
