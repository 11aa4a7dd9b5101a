"""Parameter and multiply-add counts against hand-computed values; rank metrics."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from nascore.metrics import count_flops, count_params, kendall_tau, measure_latency_ms, r2, spearman


def test_count_params_trainable_only():
    model = nn.Sequential(nn.Linear(10, 5), nn.ReLU(), nn.Linear(5, 2))
    assert count_params(model) == 10 * 5 + 5 + 5 * 2 + 2
    model[0].weight.requires_grad_(False)
    assert count_params(model) == 5 + 5 * 2 + 2


def test_count_params_honours_pruning_masks():
    layer = nn.Linear(10, 5)
    prune.l1_unstructured(layer, "weight", amount=20)  # torch.nn.utils.prune: weight_orig + weight_mask
    assert count_params(layer) == 50 - 20 + 5
    custom = nn.Linear(4, 4, bias=False)  # a compressor keeping `weight` next to a `weight_mask` buffer
    custom.register_buffer("weight_mask", torch.tensor([[1.0, 0, 0, 1]] * 4))
    assert count_params(custom) == 8


def test_count_flops_are_multiply_adds_per_sample():
    assert count_flops(nn.Linear(10, 5), (10,)) == 50
    # conv: out_channels * H * W * in_channels * k * k multiply-adds (bias not counted)
    conv = nn.Conv2d(3, 8, 3, padding=1)
    assert count_flops(conv, (3, 8, 8)) == 8 * 8 * 8 * 3 * 9
    strided = nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2)
    assert count_flops(strided, (4, 10, 10)) == 6 * 5 * 5 * 2 * 9
    net = nn.Sequential(conv, nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 16, 10))
    net.train()
    assert count_flops(net, (3, 8, 8)) == 8 * 8 * 8 * 3 * 9 + 8 * 16 * 10
    assert net.training  # mode restored


def test_count_flops_covers_every_exit():
    class TwoExits(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.h1, self.h2 = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 3), nn.Linear(8, 3)

        def forward(self, x):
            x = self.a(x)
            y = self.b(x)
            return [self.h1(x), self.h2(y)]

    assert count_flops(TwoExits(), (8,)) == 64 + 64 + 24 + 24


def test_latency_is_positive_and_per_sample():
    torch.set_num_threads(1)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
    one = measure_latency_ms(model, (64,), repeats=5)
    assert 0 < one < 100 and math.isfinite(one)
    assert model.training
    per_sample = measure_latency_ms(model, (64,), repeats=5, batch=32)
    assert 0 < per_sample < one * 32


def _tau_by_pairs(a, b):
    """Kendall tau-a from its definition (no ties in the inputs used)."""
    s = 0
    for i, j in itertools.combinations(range(len(a)), 2):
        s += math.copysign(1, (a[i] - a[j]) * (b[i] - b[j]))
    return s / (len(a) * (len(a) - 1) / 2)


def test_rank_and_regression_metrics():
    a, b = [1, 2, 3, 4, 5], [3, 4, 1, 2, 5]
    assert kendall_tau(a, b) == pytest.approx(_tau_by_pairs(a, b))  # = 0.2
    assert kendall_tau(a, a[::-1]) == pytest.approx(-1.0)
    # rank differences d = (-2, -2, 2, 2, 0): rho = 1 - 6*16/(5*24) = 0.2
    assert spearman(a, b) == pytest.approx(0.2)
    assert spearman([1, 2, 3], [1, 10, 1000]) == pytest.approx(1.0)
    y = [1.0, 2.0, 3.0, 4.0]
    assert r2(y, y) == 1.0
    assert r2(y, [2.5] * 4) == pytest.approx(0.0)
    assert r2(y, [2.0, 2.0, 3.0, 4.0]) == pytest.approx(1 - 1.0 / 5.0)
