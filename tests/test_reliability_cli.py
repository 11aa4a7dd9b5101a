"""What a user sees when things go wrong (issue 16): every failure is one line and exit
status 2 before anything is written, no stub is left behind, a finished run resumes to
nothing, and a run stops at the first systematic failure."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import attrs
import pytest
from click.testing import CliRunner

import nascore
from nascore.cli import cli
from nascore.plugins import register_plugin, unregister_plugin
from nascore.results import Outcome
from nascore.testing import require_data

TABULAR = """
name = "tab"
seed = 0
budget = 6
[space]
name = "nb201"
[optimizer]
name = "random-search"
[evaluator]
name = "tabular"
"""


def _run(args, tmp_path):
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _snapshot(path: Path) -> dict:
    """Every file under ``path`` with its content and modification time (None: absent)."""
    if not path.exists():
        return None
    return {str(p.relative_to(path)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture
def tabular(tmp_path):
    require_data("nb201/nb201.csv")
    config = tmp_path / "tab.toml"
    config.write_text(TABULAR)
    return config


def _empty_csv(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    return f'evaluator.path="{tmp_path / "empty.csv"}"'


CASES = [
    (["evaluator.path='/nonexistent/nb201.csv'"], "tabular: no benchmark table at /nonexistent/nb201.csv"),
    (["evaluator.key_column='arch'"], "tabular: no key column 'arch'"),
    (["evaluator.feedback='cifar10_vaild'"], "tabular: no column 'cifar10_vaild'"),
    (["evaluator.report='cifar10_tst'"], "tabular: no column 'cifar10_tst'"),
    (["space.name='darts'"], "does not cover space 'darts': 64 of 64 sampled architectures are not rows"),
    (_empty_csv, "is empty; it needs a header row naming the key column 'arch_str'"),
    (["metric='loss_foo'"], "metric 'loss_foo' is not produced by the 'tabular' evaluator"),
    (["budget=0"], "budget must be at least 1 evaluation, got 0"),
    (["optimizer.name='regularized-evolution'", "optimizer.population=8"],
     "population 8 >= budget 6: every evaluation would be a random initial member"),
    (["optimizer.name='regularized-evolution'", "optimizer.population=4", "optimizer.sample_size=5"],
     "sample_size 5 exceeds population 4"),
    (["compress.0.name='nat'"], "compressor 'nat' needs a dataset: add a [task] table"),
]


@pytest.mark.parametrize("sets, message", CASES, ids=[c[1][:40] for c in CASES])
def test_misconfigured_runs_are_refused_before_anything_is_written(tabular, tmp_path, sets, message):
    if callable(sets):
        sets = [sets(tmp_path)]
    config = tabular
    if any(s.startswith("compress.") for s in sets):
        pytest.importorskip("nascore_nat")
        config.write_text(TABULAR + '\n[[compress]]\nname = "nat"\n')
        sets = []
    out = tmp_path / "runs" / "r"
    assert _snapshot(tmp_path / "runs") is None
    args = ["run", str(config), "--out", str(out)] + [a for s in sets for a in ("--set", s)]
    code, stdout, stderr = _run(args, tmp_path)
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nascore: error: ") and message in lines[0], stderr
    assert stdout == ""
    assert _snapshot(tmp_path / "runs") is None  # not even the directory


def test_a_missing_dataset_is_one_error_in_the_driver_even_with_a_process_pool(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('budget = 2\n[task]\ndataset = "csv"\npath = "/nonexistent/data.csv"\n'
                      '[space]\nname = "nb201"\nC = 4\nN = 1\n[evaluator]\nname = "train"\nepochs = 1\n'
                      '[executor]\nname = "process"\nworkers = 2\n')
    code, _, stderr = _run(["run", str(config), "--out", str(tmp_path / "r")], tmp_path)
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and "/nonexistent/data.csv" in stderr, stderr
    assert not (tmp_path / "r").exists()


def test_an_out_below_a_regular_file_is_one_error(tabular, tmp_path):
    (tmp_path / "file").write_text("x")
    for out in (tmp_path / "file" / "r", tmp_path / "file"):
        code, _, stderr = _run(["run", str(tabular), "--out", str(out)], tmp_path)
        lines = stderr.strip().splitlines()
        assert code == 2 and len(lines) == 1, stderr
        assert ("cannot write the run directory" in lines[0] or "not a directory" in lines[0].lower()), lines[0]
    assert (tmp_path / "file").read_text() == "x"


# --------------------------------------------------------------------------- late errors


@attrs.define
class _Broken:
    """An optimizer that fails before evaluating anything (after the run directory exists)."""

    def run(self, ctx):
        from nascore.errors import ConfigError

        raise ConfigError("broken optimizer: refused before its first evaluation")


@attrs.define
class _AlwaysFails:
    """An evaluator whose every evaluation fails with the same error (a late, systematic failure)."""

    needs_task = False

    def evaluate(self, arch, space, task=None, *, seed=0, stopper=None):
        raise RuntimeError("the cluster's scratch disk is full")


@attrs.define
class _Slow:
    """A tabular-like evaluator that takes ``delay`` seconds per candidate."""

    needs_task = False
    delay: float = 0.3

    def evaluate(self, arch, space, task=None, *, seed=0, stopper=None):
        time.sleep(self.delay)
        return Outcome(metrics={"valid_accuracy": float(len(arch.key)), "test_accuracy": 1.0})


class _Plugin:
    @nascore.hookimpl
    def register_optimizers(self, register):
        register("test-broken", _Broken)

    @nascore.hookimpl
    def register_evaluators(self, register):
        register("test-always-fails", _AlwaysFails)
        register("test-slow", _Slow)


@pytest.fixture
def test_plugin():
    register_plugin(_Plugin(), name="test-reliability-plugin")
    yield
    unregister_plugin("test-reliability-plugin")


def test_an_error_before_the_first_evaluation_leaves_no_stub(tabular, tmp_path, test_plugin):
    out = tmp_path / "runs" / "r"
    code, _, stderr = _run(["run", str(tabular), "--out", str(out), "--set", "optimizer.name='test-broken'"], tmp_path)
    assert code == 2 and stderr.strip() == "nascore: error: broken optimizer: refused before its first evaluation"
    assert not (tmp_path / "runs").exists()
    code, stdout, stderr = _run(["run", str(tabular), "--out", str(out), "--no-report"], tmp_path)  # same --out
    assert code == 0, stderr
    assert json.loads((out / "result.json").read_text())["counts"]["ok"] == 6


def test_the_same_error_five_times_in_a_row_stops_the_run_and_keeps_what_finished(tabular, tmp_path, test_plugin):
    out = tmp_path / "r"
    code, _, stderr = _run(["run", str(tabular), "--out", str(out), "--set", "budget=12",
                            "--set", "evaluator.name='test-always-fails'", "--quiet"], tmp_path)
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1, stderr
    assert "5 evaluations in a row failed with the same error: RuntimeError: the cluster's scratch disk is full" in lines[0]
    from nascore.rundir import read_evaluations

    evals = read_evaluations(out)
    assert len(evals) == 5 and {e.status for e in evals} == {"failed"}  # kept, not 12 burnt
    assert not (out / "result.json").exists()


def test_resuming_a_finished_run_changes_nothing_on_disk(tabular, tmp_path):
    out = tmp_path / "r"
    assert _run(["run", str(tabular), "--out", str(out)], tmp_path)[0] == 0
    before = _snapshot(out)
    wall = json.loads((out / "result.json").read_text())["wall_seconds"]
    time.sleep(0.05)
    code, stdout, _ = _run(["run", "--resume", str(out)], tmp_path)
    assert code == 0 and "best " in stdout
    assert _snapshot(out) == before
    assert json.loads((out / "result.json").read_text())["wall_seconds"] == wall


def test_a_damaged_store_is_refused_by_resume_and_show_and_left_as_it_was(tabular, tmp_path):
    out = tmp_path / "r"
    assert _run(["run", str(tabular), "--out", str(out), "--no-report"], tmp_path)[0] == 0
    (out / "result.json").unlink()  # an unfinished run
    db = out / "run.sqlite"
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 3])
    before = _snapshot(out)
    for args in (["run", "--resume", str(out)], ["show", str(out)]):
        code, stdout, stderr = _run(args, tmp_path)
        lines = stderr.strip().splitlines()
        assert code == 2 and len(lines) == 1 and "is damaged" in lines[0] and "start a new run" in lines[0], stderr
    assert _snapshot(out) == before


def test_set_replacing_a_component_drops_its_parameters_with_a_note(tabular, tmp_path):
    config = tmp_path / "p.toml"
    config.write_text(TABULAR + '[executor]\nname = "process"\nworkers = 3\n')
    code, _, stderr = _run(["run", str(config), "--out", str(tmp_path / "r"), "--no-report",
                            "--set", "executor.name='local'"], tmp_path)
    assert code == 0, stderr
    assert "nascore: note: [executor]: 'local' has no parameter 'workers'; dropped" in stderr
    assert stderr.count("nascore: note:") == 1
    assert json.loads((tmp_path / "r" / "result.json").read_text())["config"]["executor"] == {"name": "local"}


# --------------------------------------------------------------------------- "none" from TOML


def test_none_survives_config_toml_and_a_resume(tmp_path):
    config = {"seed": 3, "budget": 2, "task": {"dataset": "digits", "subset": 300, "eval_subset": 100},
              "space": {"name": "nb201", "C": 4, "N": 1},
              "evaluator": {"name": "train", "epochs": 1, "measure_latency": False, "grad_clip": None}}
    out = tmp_path / "r"
    first = nascore.run(config, out=out)
    assert first["config"]["evaluator"]["grad_clip"] is None
    assert 'grad_clip = "none"' in (out / "config.toml").read_text()
    (out / "result.json").unlink()  # as if killed before the end
    second = nascore.run(None, out=out, resume=True)
    assert second["config"]["evaluator"]["grad_clip"] is None
    assert [e["key"] for e in second["evaluations"]] == [e["key"] for e in first["evaluations"]]
    assert [e["metrics"]["valid_accuracy"] for e in second["evaluations"]] == \
        [e["metrics"]["valid_accuracy"] for e in first["evaluations"]]
    # the TOML spelling, written by hand, means the same
    toml = tmp_path / "c.toml"
    toml.write_text('[space]\nname = "nb201"\n[evaluator]\nname = "train"\ngrad_clip = "none"\n')
    from nascore import config as cfg

    assert cfg.resolve(cfg.load(toml))["evaluator"]["grad_clip"] is None


# --------------------------------------------------------------------------- per-evaluation storage


def test_a_local_run_stores_each_evaluation_before_its_batch_is_complete(tmp_path, test_plugin):
    from nascore.store import RunStore

    out = tmp_path / "r"
    config = {"seed": 0, "budget": 8, "space": {"name": "nb201"}, "evaluator": {"name": "test-slow", "delay": 0.3},
              "optimizer": {"name": "random-search", "batch_size": 4}}
    counts = []
    runner = threading.Thread(target=nascore.run, args=(config,), kwargs={"out": out})
    runner.start()
    deadline = time.time() + 30
    while runner.is_alive() and time.time() < deadline:
        if (out / "run.sqlite").exists():
            try:
                with RunStore(out, readonly=True) as store:
                    counts.append(len(store))
            except Exception:  # noqa: BLE001 - the writer may be creating the schema
                pass
        time.sleep(0.05)
    runner.join(30)
    assert json.loads((out / "result.json").read_text())["counts"]["ok"] == 8
    partial = sorted({c for c in counts if c % 4})
    assert partial, f"only whole batches were ever seen in the store: {sorted(set(counts))}"
    assert {1, 2, 3} & set(partial)  # inside the first batch of 4


@pytest.mark.parametrize("grad_clip, hint", [(5.0, "or grad_clip (now 5)"), (None, "or set grad_clip")])
def test_the_divergence_hint_names_what_is_set(grad_clip, hint):
    import torch

    from nascore.data import load_task
    from nascore.errors import DivergedError
    from nascore.training import Trainer

    task = load_task({"dataset": "digits", "subset": 200, "eval_subset": 50, "flatten": True})
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    with pytest.raises(DivergedError) as info:
        Trainer(epochs=3, lr=1e12, grad_clip=grad_clip, device="cpu").fit(model, task, seed=0)
    assert hint in str(info.value) and "lower lr (now 1e+12" in str(info.value)


# --------------------------------------------------------------------------- what users see

BASELINE = '\n[baseline]\nstring = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"\n'


def test_one_numbering_in_log_show_and_report_and_the_baseline_everywhere(tabular, tmp_path, monkeypatch):
    import re

    tabular.write_text(TABULAR + BASELINE)
    out = tmp_path / "r"
    code, stdout, stderr = _run(["run", str(tabular), "--out", str(out), "--json"], tmp_path)
    assert code == 0, stderr
    logged = {}
    for line in stderr.splitlines():
        record = json.loads(line)
        m = re.match(r"#(\d+) \[\d+/6\] evaluated (\w+) ok", record["message"])
        if m:
            logged[m.group(2)] = int(m.group(1))
            assert record["number"] == int(m.group(1))
    assert sorted(logged.values()) == [1, 2, 3, 4, 5, 6]
    shown = json.loads(_run(["show", str(out), "--json"], tmp_path)[1])
    assert {r["key"]: r["number"] for r in shown["evaluations"]} == logged
    assert shown["run"]["baseline"]["metrics"]["valid_accuracy"] == pytest.approx(91.55, abs=0.01)
    table = _run(["show", str(out)], tmp_path)[1]
    assert "baseline a1694a94a096a348: valid_accuracy=91.55" in table
    best = max(shown["evaluations"], key=lambda r: r["metrics"]["valid_accuracy"])
    assert re.search(rf"^│ {best['number']} +│ {best['key']}", table, re.M)
    report = (out / "report.html").read_text()
    assert re.search(rf'<td class="num">1</td><td class="num">{best["number"]}</td><td><code>{best["key"]}', report)
    assert "<th>baseline</th><td>a1694a94a096a348: valid_accuracy 91.55" in report
    assert (out / "report_best_cell.png").stat().st_size > 5000  # the best cell, drawn from space.graph
    # run and compare print the baseline too
    code, stdout, _ = _run(["run", "--resume", str(out)], tmp_path)
    assert "baseline a1694a94a096a348: valid_accuracy=91.55, test_accuracy=94.36" in stdout
    assert "91.55" in _run(["compare", str(out)], tmp_path)[1]


def test_plots_mark_the_baseline_and_clip_a_chance_level_outlier(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from nascore.report import plot_best_so_far, plot_pareto, robust_lower_limit
    from nascore.results import Evaluation

    rng = __import__("numpy").random.default_rng(0)
    accs = list(85 + 5 * rng.random(20)) + [10.0]  # one candidate at chance level
    evals = [Evaluation(key=f"k{i}", space="s", genome={}, status="ok", index=i,
                        metrics={"valid_accuracy": a, "params": 1000 + 10 * i}) for i, a in enumerate(accs)]
    low = robust_lower_limit(accs)
    assert 10.0 < low < min(accs[:-1])  # the outlier is below the limit, every other point above
    assert robust_lower_limit(accs[:-1]) is None  # nothing to clip without it
    figures = []
    monkeypatch.setattr(Figure, "savefig", lambda self, path, **kw: figures.append(self))
    plot_best_so_far(evals, tmp_path / "a.png", baseline=91.0)
    plot_pareto(evals, "params", tmp_path / "b.png", {"metrics": {"valid_accuracy": 91.0, "params": 1500}})
    for fig in figures:
        ax = fig.axes[0]
        assert ax.get_ylim()[0] > 80  # the axis is not stretched down to 10%
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert any(t.startswith("baseline (91.00)") for t in labels)
        assert any(t.startswith("1 evaluations below") and "e.g. 10.0" in t for t in labels)


def test_compare_config_twice_stays_under_its_out(tabular, tmp_path):
    out = tmp_path / "cmp"
    for _ in range(2):
        code, _, stderr = _run(["compare", str(tabular), "--out", str(out), "--json"], tmp_path)
        assert code == 0, stderr
    assert sorted(p.name for p in out.iterdir()) == ["compare-tab", "compare-tab-2"]
    assert all((out / d / "result.json").is_file() for d in ("compare-tab", "compare-tab-2"))
