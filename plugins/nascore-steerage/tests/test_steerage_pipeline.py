"""End to end: the STEERAGE pipeline through nascore.run and the CLI, on digits."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import nascore
from nascore.errors import ConfigError


def _config(**over):
    config = {
        "name": "steerage-test", "seed": 0, "budget": 13, "device": "cpu",
        "task": {"dataset": "digits", "flatten": True},
        "space": {"name": "ffnn", "features": 64, "max_layers": 2, "neurons_low": 16, "neurons_high": 64,
                  "neurons_step": 16, "dr_methods": ["pca", "gaussian-rp", "factor-analysis"]},
        "sampler": {"name": "iterative-selection", "pool_size": 128, "per_iteration": 4, "iterations": 2},
        "predictor": {"name": "boosted-trees", "n_estimators": 50},
        "optimizer": {"name": "ees", "population": 20, "iterations": 20},
        "evaluator": {"name": "train", "epochs": 4, "batch_size": 64, "optimizer": "adam", "lr": 0.01,
                      "measure_latency": False},
        "compress": [{"name": "scann", "scheme": "C", "iterations": 2, "epochs": 2, "cv_folds": 0,
                      "max_params_ratio": 1.0},
                     {"name": "quantize", "bits": 4}],
    }
    config.update(over)
    return config


@pytest.fixture(scope="module")
def ffnn_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "ffnn"
    return out, nascore.run(_config(), out=out)


def test_global_then_local_search(ffnn_run):
    out, result = ffnn_run
    assert result["budget"]["used"] == 13  # 4 random + 2 x 4 selected + the final best
    assert result["info"]["trained_for_predictor"] == 12
    best = result["best"]
    assert best["metrics"]["valid_accuracy"] > 80.0 and best["tokens"][0].startswith("DR-")
    scann, quant = result["stages"]
    assert scann["compressor"] == "scann" and quant["compressor"] == "quantize"
    assert scann["after"]["params"] <= scann["before"]["params"]
    assert quant["info"]["bits"] == min(4, best["genome"]["quant_bits"])
    assert quant["after"]["model_bits"] <= quant["before"]["model_bits"]
    if best["genome"]["quant_bits"] > 4:
        assert quant["after"]["model_bits"] < quant["before"]["model_bits"]
    assert (out / "final.pt").exists() and (out / "result.json").exists()
    # every evaluation records its weight storage at the genome's bit width
    for e in result["evaluations"]:
        m = e["metrics"]
        bits = e["genome"]["quant_bits"]  # weights at `bits`, biases and the like at 32
        assert bits * m["params"] <= m["model_bits"] <= 32 * m["params"]
        assert (m["model_bits"] < 32 * m["params"]) == (bits < 32)


def test_compare_regressors_command_reads_the_run(ffnn_run):
    import click

    import nascore_steerage
    from nascore_steerage.cli import steerage

    group = click.Group("nascore")
    nascore_steerage.register_commands(cli=group)  # the hook adds the 'steerage' group
    assert group.commands["steerage"] is steerage
    out, _ = ffnn_run
    res = CliRunner().invoke(steerage, ["compare-regressors", str(out), "--json", "--n-estimators", "20",
                                   "--only", "linear", "--only", "boosted-trees"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["samples"] == 13 and set(data["regressors"]) == {"linear", "boosted-trees"}
    # OLS leave-one-out residuals in closed form (PRESS): e_i / (1 - h_ii), h the hat matrix
    from nascore_steerage.regressors import run_dataset

    X, y, _ = run_dataset(str(out), "valid_accuracy")
    A = np.hstack([np.ones((len(y), 1)), X])
    hat = A @ np.linalg.pinv(A)
    assert np.diag(hat).max() < 1 - 1e-6  # every point's LOO fit is defined
    press = np.mean(((y - hat @ y) / (1 - np.diag(hat))) ** 2)
    assert data["regressors"]["linear"]["loo_mse"] == pytest.approx(press, rel=1e-6)
    bad = CliRunner().invoke(steerage, ["compare-regressors", str(out), "--only", "svm"])
    assert bad.exit_code == 2 and "unknown regressor" in bad.output


def test_lenet5_pipeline_with_nest(tmp_path):
    config = _config(
        budget=5, task={"dataset": "digits"},
        space={"name": "lenet5", "input_size": 8, "image_sizes": [6, 8]},
        sampler={"name": "iterative-selection", "pool_size": 64, "per_iteration": 2, "iterations": 1},
        compress=[{"name": "nest", "iterations": 2, "candidates": 2}],
    )
    config["evaluator"].update(optimizer="sgd", lr=0.05, epochs=3)
    result = nascore.run(config, out=tmp_path / "lenet")
    stage = result["stages"][0]
    assert stage["after"]["flops"] <= stage["before"]["flops"]
    assert stage["after"]["params"] <= stage["before"]["params"]


@pytest.mark.parametrize("space, message", [
    ({"name": "ffnn", "neurons_low": 64, "neurons_high": 16}, "low 64 > high 16"),
    ({"name": "ffnn", "neurons_step": 7}, "does not divide"),
    ({"name": "ffnn", "features": 3, "ratio_low": 4.0}, "leaves < 1"),
    ({"name": "lenet5", "input_size": 8, "image_sizes": [12]}, "larger than the input"),
])
def test_bad_space_input_is_one_clear_error(space, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        nascore.run(_config(space=space), out=tmp_path / "bad")


def test_mnist_lenet5_builds_the_table7_baseline(mnist_root):
    from nascore.data import load_task
    from nascore_steerage.layers import model_cost

    task = load_task({"dataset": "mnist", "subset": 200, "eval_subset": 100})
    space = nascore.create("search_space", "lenet5")
    model = space.baseline(task)
    assert model_cost(model, task.input_shape)["params"] == 61706
    assert model(task.valid.X[:3]).shape == (3, 10)
