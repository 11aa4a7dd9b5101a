"""nascore study: 3 arms x 5 seeds on the NB-201 table, from Python and from the CLI, and
resume after SIGKILL without repeating a finished run."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import nascore
from nascore.cli import cli
from nascore.errors import ConfigError, RunStoreError
from nascore.evidence import paired, summarize
from nascore.study import Arm, Study, run_study
from nascore.testing import require_data

CONFIG = """name = "study-test"
seed = 0
budget = {budget}
device = "cpu"
[space]
name = "nb201"
[sampler]
name = "random"
[optimizer]
name = "random-search"
batch_size = 5
[evaluator]
name = "tabular"
path = "{path}"
feedback = "cifar10_valid"
report = "cifar10_test"
"""
RE = ("optimizer.name=regularized-evolution", "optimizer.population=6", "optimizer.sample_size=3")
RE_SMALL = ("optimizer.name=regularized-evolution", "optimizer.population=4", "optimizer.sample_size=2")


@pytest.fixture
def nb_config(tmp_path):
    table = require_data("nb201/nb201.csv")
    path = tmp_path / "nb.toml"
    path.write_text(CONFIG.format(budget=12, path=table))
    return path


def _arms(cfg):
    return [Arm("random", cfg), Arm("re", cfg, RE), Arm("re-small", cfg, RE_SMALL)]


def _n_evaluations(run_dir: Path) -> int:
    with sqlite3.connect(run_dir / "run.sqlite") as con:
        return con.execute("select count(*) from evaluations").fetchone()[0]


def test_study_python_three_arms_five_seeds(nb_config, tmp_path):
    out = tmp_path / "st"
    data = run_study(_arms(nb_config), 5, out, reference="random", seed0=10)
    assert data["provenance"]["seeds"] == [10, 11, 12, 13, 14]
    assert (out / "study.json").is_file() and (out / "best_so_far.png").stat().st_size > 1000
    assert json.loads((out / "study.json").read_text())["comparisons"] == json.loads(json.dumps(data["comparisons"]))
    runs = {a: {} for a in ("random", "re", "re-small")}
    for arm in runs:
        for s in range(10, 15):
            d = out / arm / f"seed-{s}"
            result = json.loads((d / "result.json").read_text())
            assert result["config"]["seed"] == s  # run seed = study seed, the same in every arm
            assert _n_evaluations(d) == 12
            runs[arm][s] = result["best"]["metrics"]
    # the statistics are those of the runs' own results
    for m in ("valid_accuracy", "test_accuracy"):
        for arm in runs:
            vals = [runs[arm][s][m] for s in range(10, 15)]
            assert data["metrics"][m][arm] == pytest.approx(summarize(vals))
        for c in (c for c in data["comparisons"] if c["metric"] == m):
            assert c["against"] == "random"
            want = paired([runs[c["arm"]][s][m] for s in range(10, 15)], [runs["random"][s][m] for s in range(10, 15)])
            assert {k: c[k] for k in want} == pytest.approx(want)
    assert data["arms"] == data["metrics"]["valid_accuracy"]
    # best-so-far band: non-decreasing mean ending at the arm's mean best valid
    curve = data["curves"]["re"]
    assert len(curve["mean"]) == 12 and curve["mean"] == sorted(curve["mean"])
    assert curve["mean"][-1] == pytest.approx(data["metrics"]["valid_accuracy"]["re"]["mean"])
    # a study seed's run is exactly the plain run with that seed
    direct = nascore.run(nb_config, sets=["seed=12", *RE], write_files=False)
    assert direct["best"]["metrics"] == runs["re"][12]
    # running it again reads everything back (no run is repeated)
    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("*/seed-*/result.json")}
    again = run_study(_arms(nb_config), 5, out, reference="random", seed0=10)
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/seed-*/result.json")} == mtimes
    assert again["comparisons"] == data["comparisons"]
    with pytest.raises(RunStoreError, match="other arms"):
        run_study(_arms(nb_config)[:2], 5, out)


def test_study_cli_three_arms_five_seeds(nb_config, tmp_path):
    out = tmp_path / "cli"
    args = ["study", str(nb_config), "--arm", "random", "--arm", "re:" + ",".join(RE),
            "--arm", "re-small:" + ",".join(RE_SMALL), "--seeds", "5", "--out", str(out), "--quiet"]
    res = CliRunner().invoke(cli, [*args, "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert set(data["arms"]) == {"random", "re", "re-small"}
    assert data["provenance"]["seeds"] == [0, 1, 2, 3, 4]
    assert all(s["n"] == 5 for s in data["arms"].values())
    compared = {(c["arm"], c["metric"]) for c in data["comparisons"]}
    assert {("re", "valid_accuracy"), ("re-small", "test_accuracy")} <= compared
    assert len(list(out.glob("*/seed-*/result.json"))) == 15
    table = CliRunner().invoke(cli, args)  # resumes: prints the table from the finished runs
    assert table.exit_code == 0 and "paired against random" in table.output
    bad = CliRunner().invoke(cli, ["study", "--arm", "x:seed=1", "--out", str(tmp_path / "b")])
    assert bad.exit_code == 2 and "pass a CONFIG" in bad.output


def test_study_rejects_bad_input(nb_config, tmp_path):
    with pytest.raises(ConfigError, match="unique"):
        Study([Arm("a", nb_config), Arm("a", nb_config)], 3, tmp_path)
    with pytest.raises(ConfigError, match="reference arm 'zz'"):
        Study(_arms(nb_config), 3, tmp_path, reference="zz")
    with pytest.raises(ConfigError, match="not found"):
        Study([Arm("a", tmp_path / "missing.toml")], 3, tmp_path)
    with pytest.raises(ConfigError, match="distinct"):
        Study(_arms(nb_config), [1, 1], tmp_path)


KILLED = """
import sys
from nascore.study import Arm, run_study
cfg = sys.argv[1]
arms = [Arm("random", cfg), Arm("re", cfg, {re}), Arm("re-small", cfg, {re_small})]
run_study(arms, 5, sys.argv[2], reference="random")
"""


def test_study_resumes_after_sigkill(tmp_path):
    table = require_data("nb201/nb201.csv")
    cfg = tmp_path / "nb.toml"
    cfg.write_text(CONFIG.format(budget=60, path=table))
    out = tmp_path / "killed"
    script = tmp_path / "study.py"
    script.write_text(KILLED.format(re=RE, re_small=RE_SMALL))
    proc = subprocess.Popen([sys.executable, str(script), str(cfg), str(out)], env=dict(os.environ))
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and len(list(out.glob("*/seed-*/result.json"))) < 2:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    finished = sorted(out.glob("*/seed-*/result.json"))
    assert 2 <= len(finished) < 15
    before = {p.parent: (p.stat().st_mtime_ns, (p.parent / "run.sqlite").stat().st_mtime_ns) for p in finished}
    data = run_study([Arm("random", cfg), Arm("re", cfg, RE), Arm("re-small", cfg, RE_SMALL)], 5, out,
                     reference="random")
    # finished runs were read back: neither their result nor their store was touched
    assert {d: ((d / "result.json").stat().st_mtime_ns, (d / "run.sqlite").stat().st_mtime_ns)
            for d in before} == before
    assert all(s["n"] == 5 for s in data["arms"].values())
    # every store holds each evaluation once (an interrupted run was resumed by replay)
    assert all(_n_evaluations(d) == 60 for d in out.glob("*/seed-*"))
    fresh = run_study([Arm("random", cfg), Arm("re", cfg, RE), Arm("re-small", cfg, RE_SMALL)], 5,
                      tmp_path / "fresh", reference="random")
    assert fresh["comparisons"] == data["comparisons"]
