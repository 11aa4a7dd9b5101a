"""Entry-point loading in real subprocesses: broken plugins, strict mode, selection, tracing."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

NASCORE = [sys.executable, "-m", "nascore.cli"]


def make_dist(root: Path, dist: str, ep: str, module: str, source: str) -> None:
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[nascore]\n{ep} = {module}\n")
    (root / f"{module}.py").write_text(source)


GOOD = '''
import attrs, nascore

@attrs.define
class Echo:
    """returns what it is given"""
    def ask(self, n):
        return []

@nascore.hookimpl
def register_samplers(register):
    register("echo", Echo)
'''


@pytest.fixture
def plugin_path(tmp_path):
    make_dist(tmp_path, "broken-plugin", "broken", "broken_mod", "raise ImportError('no module named missing_dep')\n")
    make_dist(tmp_path, "good-plugin", "good", "good_mod", GOOD)
    return tmp_path


def run_cli(args, path, **env):
    e = dict(os.environ, PYTHONPATH=str(path), **env)
    e.pop("NASCORE_LOAD_PLUGINS", None) if "NASCORE_LOAD_PLUGINS" not in env else None
    return subprocess.run(NASCORE + args, capture_output=True, text=True, env=e, timeout=120)


def test_broken_plugin_is_reported_not_fatal(plugin_path):
    res = run_cli(["plugins", "--json"], plugin_path)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    names = {p["name"]: p for p in data["plugins"]}
    assert names["good"]["distribution"] == "good-plugin" and names["good"]["version"] == "0.1"
    assert "register_samplers" in names["good"]["hooks"]
    assert [f["name"] for f in data["failed"]] == ["broken"]
    assert "no module named missing_dep" in data["failed"][0]["error"]
    assert "plugin 'broken' failed to load" in res.stderr
    help_res = run_cli(["--help"], plugin_path)
    assert help_res.returncode == 0 and "Usage" in help_res.stdout


def test_strict_mode_turns_a_broken_plugin_into_an_error(plugin_path):
    res = run_cli(["list"], plugin_path, NASCORE_STRICT_PLUGINS="1")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1].startswith("nascore: error: plugin 'broken' failed to load")


def test_load_plugins_selects_distributions(plugin_path):
    res = run_cli(["list", "sampler", "--json"], plugin_path, NASCORE_LOAD_PLUGINS="good-plugin")
    names = {c["name"]: c["plugin"] for c in json.loads(res.stdout)}
    assert names["echo"] == "good" and "random" in names
    assert "failed" not in res.stderr
    res = run_cli(["plugins", "--json"], plugin_path, NASCORE_LOAD_PLUGINS="")
    assert {p["name"] for p in json.loads(res.stdout)["plugins"]} == {
        p for p in {p["name"] for p in json.loads(res.stdout)["plugins"]} if p.startswith("nascore.")}


def test_trace_prints_hook_calls(plugin_path):
    res = run_cli(["list", "sampler"], plugin_path, NASCORE_TRACE_PLUGINS="1", NASCORE_LOAD_PLUGINS="good-plugin")
    assert "register_samplers -> good" in res.stderr
