"""Registration, the conformance kit, a tiny end-to-end search on digits, the commands
and bad input."""

import json

import pytest
import torch
from click.testing import CliRunner

import nascore
from nascore.errors import ConfigError
from nascore.testing import check_component, conformance_cases

torch.set_num_threads(1)

TINY = {
    "name": "msranas-test", "seed": 0, "budget": 1, "device": "cpu",
    "task": {"dataset": "digits", "seed": 0, "subset": 256},
    "space": {"name": "msranas", "nodes": 2, "C": 4, "layers": 4, "scales": 3},
    "optimizer": {"name": "msranas", "epochs": 1, "batch_size": 64, "search_scales": 2, "search_layers": 3,
                  "search_channels": 2, "search_cutout": 2, "latency_repeats": 1},
    "evaluator": {"name": "train", "epochs": 2, "batch_size": 64, "latency_repeats": 1},
}


def _config(**sections):
    cfg = json.loads(json.dumps(TINY))
    for name, values in sections.items():
        cfg[name].update(values)
    return cfg


def test_components_are_registered():
    names = {(c.kind, c.name) for c in nascore.components() if c.plugin == "msranas"}
    assert names == {("search_space", "msranas"), ("optimizer", "msranas")}


@pytest.mark.parametrize("kind,name", conformance_cases(plugin="msranas"))
def test_conformance(kind, name):
    check_component(kind, name)


def test_space_architectures_are_darts_architectures():
    space = nascore.create("search_space", "msranas", nodes=2)
    darts = nascore.create("search_space", "darts", nodes=2)
    arch = space.sample(__import__("numpy").random.default_rng(1))
    assert arch.space == "darts" and darts.make(arch.genome) == arch


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("msranas") / "run"
    result = nascore.run(TINY, out=out, report=True)  # the API writes a report only when asked
    return out, result


def test_tiny_search_on_digits(run_dir):
    out, result = run_dir
    best = result["best"]
    darts = nascore.create("search_space", "darts", nodes=2)
    darts.validate(best["genome"])
    info = result["info"]
    table = info["anytime"]["table"]
    assert len(table) == 3  # layers 4: an exit on each of the 3 cell layers
    assert [r["exit"] for r in table] == [1, 2, 3]
    assert table[-1]["flops"] == best["metrics"]["flops"]  # the last exit's cost is the whole network
    assert 0 < info["anytime"]["summary"]["first_flops_share"] < 1
    assert len(info["search"]["epochs"]) == 1 and info["search_cost"]["ratio"] > 0
    for name in ("best.pt", "msranas_cells.png", "msranas_anytime.png", "msranas_search.png", "report.html"):
        assert (out / name).is_file(), name
    assert "msranas_cells.png" in (out / "report.html").read_text()
    search = info["search"]
    assert search["alpha_lr_scale"] == "steps" and search["arch_steps"] >= 1
    assert search["alpha_lr"] == pytest.approx(3e-4 * max(1.0, 19550 / search["arch_steps"]))
    assert len(search["alpha_movement"]) == 1 and search["cell_stability"]["transitions"] == 0


def test_anytime_command_reproduces_the_run(run_dir):
    from nascore.cli import _add_plugin_commands, cli

    out, result = run_dir
    _add_plugin_commands()
    res = CliRunner().invoke(cli, ["msranas", "anytime", str(out), "--json", "--latency-repeats", "1"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    got = [r["accuracy"] for r in report["table"]]
    want = [r["accuracy"] for r in result["info"]["anytime"]["table"]]
    assert got == pytest.approx(want)
    assert (out / "msranas_anytime_test.png").is_file()
    bad = CliRunner().invoke(cli, ["msranas", "anytime", str(out / "missing")])
    assert bad.exit_code == 2 and "no finished run" in bad.output


@pytest.mark.parametrize("sections,message", [
    ({"space": {"scales": 5}}, "5 scales need inputs of at least 16 pixels"),
    ({"optimizer": {"search_scales": 6}}, "6 scales need inputs of at least 32 pixels"),
    ({"optimizer": {"search_layers": 0}}, "search_layers must be in"),
    ({"optimizer": {"exit_weights": [1.0, 1.0, 1.0]}}, "exit_weights has 3 entries but the search network has 2"),
    ({"evaluator": {"exit_weights": [1.0]}}, r"\[evaluator\] exit_weights has 1 entries but the final network has 3"),
    ({"optimizer": {"epochs": 2, "warmup_epochs": 2}}, r"warmup_epochs \(2\) must be below epochs \(2\)"),
])
def test_bad_input_is_a_clear_error(tmp_path, sections, message):
    with pytest.raises(ConfigError, match=message):
        nascore.run(_config(**sections), out=tmp_path / "bad")


def test_wrong_space_is_refused(tmp_path):
    cfg = _config()
    cfg["space"] = {"name": "nb201"}
    with pytest.raises(ConfigError, match="searches DARTS cells"):
        nascore.run(cfg, out=tmp_path / "bad")


def test_search_command_runs_a_config(tmp_path):
    from nascore.cli import _add_plugin_commands, cli
    from nascore.config import dumps

    _add_plugin_commands()
    path = tmp_path / "tiny.toml"
    path.write_text(dumps(TINY))
    res = CliRunner().invoke(cli, ["msranas", "search", str(path), "--out", str(tmp_path / "run"), "--quiet",
                                   "--set", "evaluator.epochs=1"])
    assert res.exit_code == 0, res.output
    assert "genotype:" in res.output and "first exit:" in res.output
    other = _config()
    other["optimizer"] = {"name": "random-search"}
    path.write_text(dumps(other))
    res = CliRunner().invoke(cli, ["msranas", "search", str(path)])
    assert res.exit_code == 2 and "must be name = 'msranas'" in res.output


def test_area_selection_prefers_the_better_anytime_curve():
    """Two candidates with equal last-exit accuracy: the one whose early exits are
    better wins under 'area' and ties under 'accuracy' go to the first."""
    from types import SimpleNamespace

    from nascore.data import load_task
    from nascore.results import Evaluation
    from nascore_msranas.optimizer import MSRANAS

    space = nascore.create("search_space", "msranas", nodes=2, C=2, layers=4, scales=2)
    task = load_task({"dataset": "digits", "seed": 0, "subset": 64})
    arch = space.sample(__import__("numpy").random.default_rng(0))

    def ev(key, exits):
        return Evaluation(key=key, space="darts", genome=arch.genome, status="ok",
                          metrics={"valid_accuracy": exits[-1]}, curve=[{"valid_exit_accuracies": exits}])

    cands = [ev("a", [50.0, 60.0, 90.0]), ev("b", [80.0, 85.0, 90.0])]
    ctx = SimpleNamespace(space=space, task=task)
    best, scores = MSRANAS(selection="area")._select(ctx, cands)
    assert best.key == "b" and scores["b"] > scores["a"]
    best, scores = MSRANAS(selection="accuracy")._select(ctx, cands)
    assert scores == {"a": 90.0, "b": 90.0}


def test_resume_replays_the_final_training(run_dir, tmp_path):
    """Resume is replay: the search runs again (deterministically), the final training
    comes from the store and its weights from best.pt; nothing is trained twice."""
    import shutil

    from nascore.rundir import read_evaluations

    out, result = run_dir
    copy = tmp_path / "resumed"
    shutil.copytree(out, copy)
    again = nascore.run(None, out=copy, resume=True)
    assert again["best"]["key"] == result["best"]["key"]
    assert len(read_evaluations(copy)) == 1
    got = [r["accuracy"] for r in again["info"]["anytime"]["table"]]
    assert got == pytest.approx([r["accuracy"] for r in result["info"]["anytime"]["table"]])


def test_builtin_search_config_is_the_example_file():
    import tomllib
    from pathlib import Path

    from nascore_msranas.cli import DEFAULT_CONFIG

    example = Path(__file__).resolve().parents[3] / "examples" / "msranas_digits.toml"
    if not example.is_file():
        pytest.skip("examples/ is not next to this plugin")
    assert tomllib.loads(example.read_text()) == DEFAULT_CONFIG
    from nascore.config import resolve

    resolve(DEFAULT_CONFIG)  # every name and parameter is valid
