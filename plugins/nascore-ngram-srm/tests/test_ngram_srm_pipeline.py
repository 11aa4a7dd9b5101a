"""End to end: a tiny ``nascore.run`` on digits with the plugin's components."""

from __future__ import annotations

import numpy as np
import pytest

import nascore
from nascore.errors import ConfigError
from nascore.testing import check_component, synthetic_context

EPOCHS = 6


def config(**over):
    cfg = {
        "name": "ngram-srm-test", "seed": 0, "budget": 10, "device": "cpu",
        "task": {"dataset": "digits", "seed": 0},
        "space": {"name": "metaqnn", "width": 0.0625, "max_layers": 4},
        "encoder": {"name": "ngram", "n": 2},
        "predictor": {"name": "srm", "search": False},
        "optimizer": {"name": "predictor-screening", "pool": 40, "batch_size": 2, "warmup": 4},
        "evaluator": {"name": "train", "epochs": EPOCHS, "batch_size": 128, "measure_latency": False},
        "stopper": {"name": "srm-stop", "fraction": 0.34, "min_curves": 4, "confidence": 0.5},
        "executor": {"name": "local"},
    }
    cfg.update(over)
    return cfg


def test_optimizer_conformance():
    check_component("optimizer", "predictor-screening")


def test_tiny_run_on_digits_stops_candidates_and_saves_epochs(tmp_path):
    result = nascore.run(config(), out=tmp_path / "run")
    evals = result["evaluations"]
    assert len(evals) == 10 and result["counts"]["failed"] == 0
    stopped = [e for e in evals if e["status"] == "stopped"]
    assert stopped, "with confidence 0.5 some candidate predicted below the best must stop"
    checks = nascore.create("stopper", "srm-stop", fraction=0.34).check_points(EPOCHS)
    assert checks == [2, 4, 5]
    for e in stopped:
        assert len(e["curve"]) in checks and e["metrics"]["predicted_accuracy"] is not None
    epochs = sum(len(e["curve"]) for e in evals)
    assert epochs == 10 * EPOCHS - sum(EPOCHS - len(e["curve"]) for e in stopped) < 10 * EPOCHS
    assert result["info"]["screened"] > 0
    assert result["best"]["tokens"] and result["best"]["metrics"]["valid_accuracy"] > 20


def test_screening_needs_encoder_and_predictor():
    space = nascore.create("search_space", "metaqnn")
    ctx = synthetic_context(space, budget=4)
    with pytest.raises(ConfigError, match="needs an \\[encoder\\] and a \\[predictor\\]"):
        nascore.create("optimizer", "predictor-screening").run(ctx)


def test_screening_ranks_with_the_predictor():
    """On the synthetic objective the screened batches beat random ones."""
    space = nascore.create("search_space", "resnet-chain", max_blocks=4)
    best = {}
    for name, params in (("random-search", {}), ("predictor-screening", {"pool": 60, "warmup": 8, "explore": 0.0})):
        scores = []
        for seed in range(3):
            ctx = synthetic_context(space, budget=30, seed=seed, encoder=nascore.create("encoder", "vector"),
                                    predictor=nascore.create("predictor", "srm", regressor="blr"))
            nascore.create("optimizer", name, **params).run(ctx)
            scores.append(np.mean([e.metrics["valid_accuracy"] for e in ctx.history[-10:]]))
        best[name] = np.mean(scores)
    assert best["predictor-screening"] > best["random-search"]
