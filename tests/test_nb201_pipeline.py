"""The recommended NAS-Bench-201 pipeline (examples/nb201.toml, issue 20): cell
canonicalization, the guided local search's deduplication and density-ratio ranking, the
optional report, and the peer benchmark's quick mode."""

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

import nascore
from nascore import config as cfg
from nascore.arch import Architecture
from nascore.builtin.guided import density_ratio_scores
from nascore.errors import ConfigError
from nascore.testing import require_data

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def nb201():
    return nascore.create("search_space", "nb201")


def test_canonical_merges_dead_edges_and_equivalent_cells(nb201):
    # node 1's only input is none, so node 1 is zero and its out-edges 1->2, 1->3 are dead
    base = "|none~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    dead = "|none~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|skip_connect~1|nor_conv_3x3~2|"
    # node 1 is a skip of the input, so conv3x3 on 0->2 and on 1->2 compute the same thing
    skip_a = "|skip_connect~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"
    skip_b = "|skip_connect~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"
    other = "|none~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    c = {s: nb201.canonical(nb201.from_string(s)) for s in (base, dead, skip_a, skip_b, other)}
    assert c[base] == c[dead] != c[other]
    assert c[skip_a] == c[skip_b] != c[base]
    assert nb201.from_string(base).key != nb201.from_string(dead).key  # keys never change


def test_canonical_reproduces_the_tables_isomorphism_classes(nb201):
    path = require_data("nb201/nb201.csv")
    with open(path) as fh:
        rows = [(r["arch_str"], r["unique_str"]) for r in csv.DictReader(fh)]
    labels = {nb201.canonical(nb201.from_string(s)) for s, _ in rows[::7]}
    assert all(nb201.canonical(nb201.from_string(s)) == u for s, u in rows[::7])
    assert len({u for _, u in rows}) == 6466 and len(labels) <= 6466


def test_density_ratio_is_tpes_log_ratio_of_smoothed_counts(nb201):
    # four evaluated cells: the best (gamma 0.25 -> 2 good) are all-conv3x3 and
    # all-conv1x1; the rest all-none and all-pool
    cells = {op: nb201.from_path([nb201.ops.index(op)] * 6) for op in ("nor_conv_3x3", "nor_conv_1x1", "none", "avg_pool_3x3", "skip_connect")}
    evaluated = [cells["nor_conv_3x3"], cells["nor_conv_1x1"], cells["none"], cells["avg_pool_3x3"]]
    ys = [90.0, 85.0, 10.0, 50.0]
    cand = [cells["nor_conv_3x3"], cells["skip_connect"], cells["none"]]
    got = density_ratio_scores(nb201, evaluated, ys, cand, gamma=0.25, alpha=1.0)
    # per edge, 5 ops with add-one smoothing: good counts conv3 1, conv1 1 (total 7);
    # bad counts none 1, pool 1 (total 7); 6 edges add up
    expect = 6 * np.array([math.log(2 / 7) - math.log(1 / 7), 0.0, math.log(1 / 7) - math.log(2 / 7)])
    assert np.allclose(got, expect, atol=1e-12)


def test_guided_local_search_spends_no_query_on_an_equivalent_cell(nb201):
    require_data("nb201/nb201.csv")
    config = cfg.load(ROOT / "examples" / "nb201.toml")
    config.update(budget=80, seed=3)
    result = nascore.run(config, write_files=False)
    evals = result["evaluations"]
    assert len(evals) == 80 == result["budget"]["used"]
    classes = {nb201.canonical(Architecture("nb201", e["genome"])) for e in evals}
    assert len(classes) == 80
    best = max(e["metrics"]["valid_accuracy"] for e in evals)
    assert result["best"]["metrics"]["valid_accuracy"] == best


def test_plain_local_search_does_spend_queries_on_equivalent_cells(nb201):
    """The control for the test above: without deduplication some of 80 queries go to
    cells equivalent to earlier ones (15,625 cells, 6,466 classes)."""
    require_data("nb201/nb201.csv")
    config = cfg.load(ROOT / "examples" / "nb201.toml")
    config.update(budget=80, seed=3)
    config["optimizer"] = {**config["optimizer"], "deduplicate": False}
    evals = nascore.run(config, write_files=False)["evaluations"]
    classes = {nb201.canonical(Architecture("nb201", e["genome"])) for e in evals}
    assert len(evals) == 80 and len(classes) < 80


def test_report_is_written_only_when_asked(tmp_path):
    require_data("nb201/nb201.csv")
    config = {"name": "r", "budget": 5, "space": {"name": "nb201"}, "evaluator": {"name": "tabular"}}
    nascore.run(config, out=tmp_path / "api")
    assert (tmp_path / "api" / "result.json").exists() and not (tmp_path / "api" / "report.html").exists()
    nascore.run({**config, "report": False}, out=tmp_path / "off", report=None)
    assert not (tmp_path / "off" / "report.html").exists()
    with pytest.raises(ConfigError, match="report must be true or false"):
        nascore.run({**config, "report": "no"}, write_files=False)


def test_cli_no_report(tmp_path):
    require_data("nb201/nb201.csv")
    from click.testing import CliRunner

    from nascore.cli import cli

    path = tmp_path / "c.toml"
    path.write_text('budget = 4\n[space]\nname = "nb201"\n[evaluator]\nname = "tabular"\n')
    res = CliRunner().invoke(cli, ["run", str(path), "--out", str(tmp_path / "run"), "--no-report", "--quiet"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "run" / "result.json").exists() and not (tmp_path / "run" / "report.html").exists()


def test_peers_benchmark_quick_mode(tmp_path):
    pytest.importorskip("optuna")
    require_data("nb201/nb201.csv")
    import importlib.util

    spec = importlib.util.spec_from_file_location("peers_nb201", ROOT / "benchmarks" / "peers_nb201.py")
    peers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peers)
    out = tmp_path / "peers.json"
    assert peers.main(["--quick", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert set(data["provenance"]) >= {"commit", "dirty", "command", "settings", "seeds", "tuned_on"}
    arms = data["arms"]
    assert arms["tpe/cifar10/20"]["n"] == 3 and "nb201/cifar10/20" in arms
    for name, arm in arms.items():
        assert 80.0 < arm["mean"] <= 91.61 + 1e-6  # a best-valid of 20 distinct CIFAR-10 cells
    comp = next(c for c in data["comparisons"] if c["arm"] == "nb201/cifar10/20" and c["metric"] == "valid_accuracy")
    assert comp["against"] == "tpe/cifar10/20" and comp["n"] == 3
    assert comp["diff_mean"] == pytest.approx(arms["nb201/cifar10/20"]["mean"] - arms["tpe/cifar10/20"]["mean"])
