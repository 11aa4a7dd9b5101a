"""Budgeted prediction (Eq. 4), confidence exits, the area score, per-exit costs."""

import numpy as np
import pytest
import torch

from nascore.errors import ConfigError
from nascore.metrics import count_flops, count_params
from nascore_msranas.anytime import (anytime_area, anytime_table, budgeted_accuracy, exit_costs, exit_for_budget,
                                     expected_accuracy, threshold_curve, threshold_exit)
from nascore_msranas.network import MultiScaleNetwork, make_layout

torch.set_num_threads(1)

COSTS = [10, 30, 60]
CORRECT = np.array([[1, 1, 1], [0, 1, 1], [0, 0, 1], [1, 0, 0]], dtype=bool)


def test_budget_picks_the_deepest_affordable_exit():
    assert exit_for_budget(COSTS, [5, 10, 29.9, 30, 1000]).tolist() == [-1, 0, 0, 1, 2]


def test_budgeted_accuracy_per_sample_budgets():
    # budgets 5 (no exit fits: an error), 30 -> exit 2 right, 45 -> exit 2 wrong, 100 -> exit 3 wrong
    assert budgeted_accuracy(CORRECT, COSTS, [5, 30, 45, 100]) == pytest.approx(25.0)
    assert budgeted_accuracy(CORRECT, COSTS, 30) == pytest.approx(50.0)
    assert budgeted_accuracy(CORRECT, COSTS, 60) == pytest.approx(75.0)


def test_expected_accuracy_under_a_budget_distribution():
    acc = [60.0, 80.0, 90.0]
    # 0.1 * 0 + 0.2 * 60 + 0.3 * 80 + 0.4 * 90
    assert expected_accuracy(acc, COSTS, [5, 20, 40, 100], [0.1, 0.2, 0.3, 0.4]) == pytest.approx(72.0)
    assert expected_accuracy(acc, COSTS, [60]) == pytest.approx(90.0)
    with pytest.raises(ConfigError, match="sum to 1"):
        expected_accuracy(acc, COSTS, [5, 20], [0.5, 0.6])


def test_area_is_eq4_with_uniform_budgets():
    acc = [60.0, 80.0, 90.0]
    assert anytime_area(acc, COSTS) == pytest.approx((60 * 20 + 80 * 30) / 60)
    assert anytime_area(acc, COSTS, max_flops=100) == pytest.approx((60 * 20 + 80 * 30 + 90 * 40) / 100)
    grid = (np.arange(100000) + 0.5) / 100000 * 100
    assert expected_accuracy(acc, COSTS, grid) == pytest.approx(anytime_area(acc, COSTS, 100), abs=1e-3)
    # a cheaper first exit with the same accuracies scores higher
    assert anytime_area(acc, [5, 30, 60], 60) > anytime_area(acc, COSTS, 60)


def test_threshold_exiting_on_a_hand_made_example():
    probs = np.array([[[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]],
                      [[0.2, 0.8], [0.1, 0.9], [0.4, 0.6]]])
    labels = np.array([0, 1, 1])
    out = threshold_exit(probs, labels, [1.0, 3.0], 0.65)
    assert out["accuracy"] == pytest.approx(100.0)
    assert out["flops"] == pytest.approx(5.0 / 3.0)
    assert out["exit_share"] == pytest.approx([2 / 3, 1 / 3])
    late = threshold_exit(probs, labels, [1.0, 3.0], 0.95)
    assert late["accuracy"] == pytest.approx(200.0 / 3.0) and late["flops"] == pytest.approx(3.0)
    curve = threshold_curve(probs, labels, [1.0, 3.0])
    assert curve[0]["flops"] == pytest.approx(1.0) and curve[-1]["flops"] == pytest.approx(3.0)


def test_bad_costs_are_refused():
    with pytest.raises(ConfigError, match="cumulative"):
        exit_for_budget([10, 5], 7)
    with pytest.raises(ConfigError, match="exit costs"):
        budgeted_accuracy(CORRECT, [10, 30], 30)


GENOTYPE = {
    "normal": [("sep_conv_3x3", 0, 2), ("skip_connect", 1, 2), ("dil_conv_3x3", 1, 3), ("max_pool_3x3", 2, 3)],
    "normal_concat": [2, 3],
    "reduce": [("avg_pool_3x3", 0, 2), ("sep_conv_5x5", 1, 2), ("skip_connect", 0, 3), ("dil_conv_5x5", 2, 3)],
    "reduce_concat": [2, 3],
}


def test_exit_costs_are_cumulative_and_end_at_the_whole_network():
    lay = make_layout((1, 8, 8), scales=3, layers=5, C=4)
    net = MultiScaleNetwork(GENOTYPE, (1, 8, 8), 10, lay)
    rows = exit_costs(net, (1, 8, 8), latency_repeats=2)
    flops = [r["flops"] for r in rows]
    params = [r["params"] for r in rows]
    assert all(a < b for a, b in zip(flops, flops[1:])) and all(a < b for a, b in zip(params, params[1:]))
    assert flops[-1] == count_flops(net, (1, 8, 8))
    assert params[-1] == count_params(net)
    assert all(r["latency_ms"] > 0 for r in rows)


def test_anytime_table_accuracy_matches_the_exits():
    from nascore.data import Split

    lay = make_layout((1, 8, 8), scales=2, layers=4, C=2)
    net = MultiScaleNetwork(GENOTYPE, (1, 8, 8), 3, lay).eval()
    X = torch.randn(20, 1, 8, 8)
    with torch.no_grad():
        outs = net(X)
    y = outs[1].argmax(1)  # labels that exit 2 gets all right
    rows = anytime_table(net, Split(X, y), (1, 8, 8), latency_repeats=0)
    assert rows[1]["accuracy"] == pytest.approx(100.0)
    for row, out in zip(rows, outs):
        assert row["accuracy"] == pytest.approx(100.0 * float((out.argmax(1) == y).float().mean()))
