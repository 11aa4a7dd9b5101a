"""The recommended NAS-Bench-201 pipeline (examples/nb201.toml, issue 20): cell
canonicalization, the guided local search's deduplication and density-ratio ranking, the
optional report, and the peer benchmark's quick mode."""

import csv
import json
import math
from pathlib import Path

import attrs
import numpy as np
import pytest

import nascore
from nascore import config as cfg
from nascore.arch import Architecture
from nascore.arch import Choice, SearchSpace
from nascore.builtin.guided import GuidedLocalSearch, density_ratio_scores
from nascore.errors import ConfigError
from nascore.results import OK, Outcome
from nascore.testing import require_data, synthetic_context

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


# ---- guided-local-search restarts (restart = "unused") on a tiny space -------------------


@attrs.define
class _Grid(SearchSpace):
    """Four dimensions with three values each: 81 architectures, no equivalences."""

    name = "grid4"

    def dimensions(self):
        return [Choice(f"d{i}", ["a", "b", "c"]) for i in range(4)]


class _TwoBasins:
    """A wide basin around the local optimum aaaa (value 10) and a narrow one around the
    global optimum cccc (12): the better of 10 - 0.5 (#dimensions not a) and
    12 - 3 (#dimensions not c)."""

    needs_task = False

    def evaluate(self, arch, space, task, *, seed, stopper=None):
        g = arch.genome
        off_a, off_c = (sum(g[f"d{i}"] != v for i in range(4)) for v in "ac")
        v = max(10.0 - 0.5 * off_a, 12.0 - 3.0 * off_c)
        return Outcome(metrics={"valid_accuracy": v})


@attrs.define
class _Ev:
    """A stand-in evaluation with a given score."""

    arch: Architecture
    value: float
    status: str = OK

    def metric(self, name):
        return self.value


def _cell(space, ops: str) -> Architecture:
    return space.make({f"d{i}": op for i, op in enumerate(ops)})


def test_unused_restart_starts_from_the_best_far_draw_and_spends_restart_draws_queries():
    space = _Grid()
    ctx = synthetic_context(space, budget=30, evaluator=_TwoBasins())
    opt = GuidedLocalSearch(restart="unused", restart_draws=0, distance=0.75)  # >= 3 of 4 dimensions apart
    opt._canon, opt._seen = space.canonical, set()  # what run() sets up
    opt._optima = [_cell(space, "aaaa")]
    near = _Ev(_cell(space, "aabb"), 9.0)    # 2 apart: not preferred
    far_lo = _Ev(_cell(space, "bbba"), 5.0)  # 3 apart
    far_hi = _Ev(_cell(space, "cbcb"), 7.0)  # 4 apart
    opt._unused = [near, far_lo, far_hi]
    assert opt._start(ctx, first=False) is far_hi and ctx.used == 0  # restart_draws=0: no query
    assert opt._start(ctx, first=False) is far_lo
    assert opt._start(ctx, first=False) is near  # no far draw left: the best unused one
    assert opt._unused == [] and ctx.used == 0
    opt.restart_draws = 2
    start = opt._start(ctx, first=False)  # two new draws join the empty pool, one is left
    new = list(ctx.history)
    assert ctx.used == 2 and len(opt._unused) == 1
    assert {start.arch.key, opt._unused[0].arch.key} == {e.arch.key for e in new}
    apart = [sum(v != "a" for v in e.arch.genome.values()) for e in new]
    pool = [e for e, d in zip(new, apart) if d >= 3] or new
    assert start.metric("valid_accuracy") == max(e.metric("valid_accuracy") for e in pool)


@pytest.mark.parametrize("restart", ["sample", "unused"])
def test_climbs_are_accounted_and_local_optima_verified(restart):
    space = _Grid()
    ctx = synthetic_context(space, budget=40, seed=1, evaluator=_TwoBasins())
    result = GuidedLocalSearch(initial=4, restart=restart, restart_draws=1).run(ctx)
    climbs = result.info["climbs"]
    assert ctx.used == 40 and len(climbs) >= 2
    # every query is a draw or a climb step: 4 draws per start (sample) or 4 then 1 per
    # restart (unused); the budget may cut the last start's draws short
    per_start = [4] + [4 if restart == "sample" else 1] * (len(climbs) - 1)
    climbed = sum(c["queries"] for c in climbs)
    assert sum(per_start[:-1]) + 1 <= 40 - climbed <= sum(per_start)
    seen = {e.arch.key: e.metric("valid_accuracy") for e in ctx.history}
    order = {e.arch.key: i for i, e in enumerate(ctx.history)}
    assert any(c["local_optimum"] for c in climbs)
    for c in climbs:
        assert c["end"] >= c["start"] and seen[c["end_key"]] == c["end"]
        if c["local_optimum"]:
            # every neighbour is evaluated by the climb's end; a better one only if it was
            # evaluated before the climb (a known basin: climbs query unseen cells only)
            arch = next(e.arch for e in ctx.history if e.arch.key == c["end_key"])
            first = c["used_after"] - c["queries"]
            for n in space.neighbors(arch):
                assert order[n.key] < c["used_after"]
                assert seen[n.key] <= c["end"] or order[n.key] < first
    assert result.best.key == max(ctx.history, key=lambda e: e.metric("valid_accuracy")).arch.key


def test_unused_restart_leaves_the_climbed_basin():
    """With `distance` 1 the second climb starts from the best unused draw that differs
    from the first local optimum in every dimension (here aaaa), when there is one."""
    space = _Grid()
    ctx = synthetic_context(space, budget=40, seed=1, evaluator=_TwoBasins())
    result = GuidedLocalSearch(initial=8, restart="unused", restart_draws=1, distance=1.0).run(ctx)
    c0, c1 = result.info["climbs"][:2]
    assert c0["local_optimum"] and c0["end_key"] == _cell(space, "aaaa").key  # the trap
    hist = list(ctx.history)
    pool = [e for e in hist[:8] if e.arch.key != c0["start_key"]] + [hist[8 + c0["queries"]]]
    optimum = _cell(space, "aaaa").genome
    far = [e for e in pool if all(e.arch.genome[k] != v for k, v in optimum.items())]
    assert far  # this seed draws one, so the rule's preference is what is tested
    assert c1["start_key"] == max(far, key=lambda e: e.metric("valid_accuracy")).arch.key
    assert c1["end"] == 12.0  # from cccc's basin the climb reaches the global optimum
    # the control: restarting from the best unused draw (distance 0) stays in aaaa's wide
    # basin on this seed and never finds cccc within the budget
    ctx0 = synthetic_context(space, budget=40, seed=1, evaluator=_TwoBasins())
    control = GuidedLocalSearch(initial=8, restart="unused", restart_draws=1, distance=0.0).run(ctx0)
    assert max(c["end"] for c in control.info["climbs"]) < 12.0
