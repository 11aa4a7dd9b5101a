"""Without a CUDA device the ``cuda`` tests are skipped; this checks that they still
exist and are collected (so they run on the first CUDA machine), that every plugin's
own pytest configuration knows the marker, and that asking for CUDA without one is a
one-line error."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch

from nascore.data import load_task
from nascore.errors import ConfigError
from nascore.training import Trainer

ROOT = Path(__file__).resolve().parents[1]

#: the CUDA test files and how many tests each must hold
CUDA_TESTS = {
    "tests/test_cuda_trainer.py": 5,
    "plugins/nascore-msranas/tests/test_cuda_msranas.py": 2,
    "plugins/nascore-tnas/tests/test_cuda_tnas.py": 2,
    "plugins/nascore-nat/tests/test_cuda_nat.py": 1,
    "plugins/nascore-steerage/tests/test_cuda_steerage.py": 2,
    "plugins/nascore-ngram-srm/tests/test_cuda_ngram_srm.py": 2,
}


def test_cuda_tests_are_collected():
    cmd = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "cuda", "-p", "no:cacheprovider",
           "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT), *CUDA_TESTS]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    ids = [line for line in proc.stdout.splitlines() if "::" in line]
    for path, expected in CUDA_TESTS.items():
        assert sum(line.startswith(path + "::") for line in ids) == expected, path
    assert re.search(rf"\b{sum(CUDA_TESTS.values())} tests? collected", proc.stdout)


def test_every_plugin_pytest_config_registers_the_cuda_marker():
    configs = [ROOT / "pyproject.toml", *sorted((ROOT / "plugins").glob("*/pyproject.toml"))]
    for path in configs:
        ini = tomllib.loads(path.read_text()).get("tool", {}).get("pytest", {}).get("ini_options")
        if ini is None or "markers" not in ini:
            continue  # runs under the root configuration (or registers no markers at all)
        assert any(m.startswith("cuda:") for m in ini["markers"]), path


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_request_without_cuda_is_one_clear_line():
    task = load_task({"dataset": "digits"})
    with pytest.raises(ConfigError) as info:
        Trainer(device="cuda", epochs=1).fit(torch.nn.Flatten(), task)
    message = str(info.value)
    assert "\n" not in message and "CUDA is not available" in message and "device='cpu'" in message
