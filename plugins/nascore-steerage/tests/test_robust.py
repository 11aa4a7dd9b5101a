"""Robust scores: k-fold cross-validation (cv-train evaluator, compressor steps) and the
selection rule (ties go to the input)."""

import numpy as np
import pytest
import torch
from torch import nn

import nascore
from nascore_steerage.robust import fold_tasks, resolve_folds
from nascore_steerage.synthesis import Selection


@pytest.fixture(scope="module")
def wine():
    from nascore.data import load_task

    return load_task({"dataset": "wine", "seed": 0})


def test_folds_partition_train_and_valid_and_never_see_test(wine):
    pooled = len(wine.train) + len(wine.valid)
    subs = fold_tasks(wine, 5, seed=0)
    assert len(subs) == 5 and all(len(s.test) == 0 for s in subs)
    assert sum(len(s.valid) for s in subs) == pooled
    assert all(len(s.train) + len(s.valid) == pooled for s in subs)
    held = torch.cat([s.valid.X for s in subs])
    # every pooled row is held out exactly once: the held-out rows are the pooled rows
    key = lambda X: sorted(map(tuple, X.round(decimals=5).tolist()))  # noqa: E731
    assert key(held) == key(torch.cat([wine.train.X, wine.valid.X]))
    # stratified: each class's share in a fold is within one row of its pooled share
    y = torch.cat([wine.train.y, wine.valid.y])
    for s in subs:
        for c in range(wine.num_classes):
            expect = float((y == c).sum()) * len(s.valid) / pooled
            assert abs(float((s.valid.y == c).sum()) - expect) <= 1.0 + 1e-9
    assert resolve_folds(None, wine) == 5
    assert resolve_folds(None, type("T", (), {"kind": "image"})()) == 0


def test_cv_evaluator_reports_the_pooled_kfold_accuracy(wine):
    """cv_accuracy is correct/rows over all 142 pooled rows, so cv * 142 / 100 is an
    integer; it is computed on folds independent of the train/valid split, and the
    train evaluator's own metrics are kept."""
    space = nascore.create("search_space", "ffnn", features=13, neurons_low=8, neurons_high=16, neurons_step=8,
                           max_layers=1, dr_methods=["pca"], bits=[32])
    arch = space.make({"layers": 1, "n1": 16, "dr_method": "pca", "dr_ratio": 1.0, "quant_bits": 32})
    ev = nascore.create("evaluator", "cv-train", epochs=3, lr=0.01, optimizer="adam", batch_size=32,
                        measure_latency=False, device="cpu", folds=4)
    out = ev.evaluate(arch, space, wine, seed=0)
    pooled = len(wine.train) + len(wine.valid)
    cv = out.metrics["cv_accuracy"]
    assert out.metrics["cv_folds"] == 4 and 0 < cv <= 100
    assert abs(cv * pooled / 100 - round(cv * pooled / 100)) < 1e-6
    assert out.metrics["valid_accuracy"] is not None and out.metrics["test_accuracy"] is not None
    assert out.state_dict is not None
    again = ev.evaluate(arch, space, wine, seed=0)
    assert again.metrics["cv_accuracy"] == cv  # seeded: same folds, same networks


def test_selection_ties_go_to_the_input_not_to_the_lowest_loss():
    """The input validates 90%; a smaller, more confident candidate also validates 90%:
    the input stays.  A candidate 1 point better wins; robust scores override."""
    sel = Selection()
    m = nn.Linear(2, 2)
    sel.offer_input(m, {"params": 100, "flops": 100, "valid_accuracy": 90.0, "valid_loss": 0.5})
    sel.offer(m, {"params": 40, "flops": 40, "valid_accuracy": 90.0, "valid_loss": 0.1}, "prune")
    assert sel.best()[0]["step"] == "input"
    sel.offer(m, {"params": 120, "flops": 120, "valid_accuracy": 91.0, "valid_loss": 0.9}, "grow")
    assert sel.best()[0]["step"] == "grow"
    sel.rescore([95.0, 95.0, 94.0])  # cross-validated: grow is worse, prune ties the input
    assert sel.best()[0]["step"] == "input"
    sel.rescore([95.0, 96.0, 96.0])  # tie between two changes: the smaller one
    assert sel.best()[0]["step"] == "prune"
    assert [h["cv_accuracy"] for h in sel.history] == [95.0, 96.0, 96.0]


def test_scann_scores_every_step_by_cross_validation_and_keeps_the_best(wine):
    from nascore.training import Trainer
    from nascore_steerage.mlp import FeedForward
    from nascore_steerage.networks import SteerageNet
    from nascore_steerage.scann import SCANN

    class Ctx:
        seed = 0
        config = {}

        def trainer(self, **overrides):
            return Trainer(**{"device": "cpu", "lr": 0.01, "optimizer": "adam", "batch_size": 32, "epochs": 3,
                              **overrides})

    torch.manual_seed(0)
    model = SteerageNet(nn.Identity(), nn.Identity(), FeedForward([13, 16, 8, 3]))
    Ctx().trainer().fit(model, wine)
    res = SCANN(iterations=2, epochs=1, cv_folds=3, final_epochs=0).compress(None, model, wine, Ctx())
    scores, history = res.info["cv_scores"], res.info["history"]
    assert len(scores) == len(history) == 3  # input + 2 steps
    pooled = len(wine.train) + len(wine.valid)
    assert all(abs(s * pooled / 100 - round(s * pooled / 100)) < 1e-6 for s in scores)
    top = max(scores)
    best = [h for h in history if h["cv_accuracy"] == top]
    want = "input" if history[0]["cv_accuracy"] == top else min(best, key=lambda h: h["params"])["step"]
    assert res.info["chosen_step"] == want
    assert res.info["param_limit"] is None  # no size cap unless asked


def test_scann_can_prune_large_weights():
    """prune_large removes the largest-magnitude share too: the largest active weight
    of each layer goes, and the count falls by both shares (floors of 10% and 20%)."""
    from nascore_steerage.mlp import FeedForward
    from nascore_steerage.scann import prune_connections

    torch.manual_seed(0)
    net = FeedForward([10, 20, 5])
    top = [float(layer.weight.detach().abs().max()) for layer in net.layers]
    pruned = prune_connections(net, 0.2, large=0.1)
    # layer 1: 200 weights -> 20 large, then 20% of 180 = 36 small; layer 2: 100 -> 10 + 18
    assert pruned == 20 + 36 + 10 + 18
    for layer, t in zip(net.layers, top):
        active = layer.weight[layer.weight_mask > 0].abs()
        assert float(active.max()) < t


def test_lenet5_max_and_avg_pooling_keep_partial_windows():
    """ceil-mode pooling: 21x21 -> 11 -> (3x3 valid) 9 -> 5, Table 6's FC1 = conv2 x 25."""
    from nascore_steerage.networks import lenet5_features

    stack, width = lenet5_features(1, 21, 3, 5, 15, "avg", "max")
    assert width == 15 * 25
    assert stack(torch.zeros(1, 1, 21, 21)).flatten(1).shape[1] == width
    assert np.isclose(width, 375)
