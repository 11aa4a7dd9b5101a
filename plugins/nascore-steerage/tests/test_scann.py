"""SCANN operations and compressor (sections 3.1, 4.6.1)."""

import numpy as np
import pytest
import torch
from torch import nn

import nascore
from nascore.errors import ConfigError
from nascore.metrics import count_params
from nascore.testing import check_component
from nascore.training import Trainer
from nascore_steerage.layers import model_cost
from nascore_steerage.mlp import FeedForward
from nascore_steerage.scann import (SCANN, connection_gradients, grow_connections, grow_neurons,
                                    prune_connections, remove_dead_neurons)


class Ctx:
    seed = 0

    def trainer(self, **overrides):
        return Trainer(**{"device": "cpu", "optimizer": "adam", "lr": 0.01, "batch_size": 64, **overrides})


def test_conformance():
    check_component("compressor", "scann")


def _net(sizes=(12, 10, 8, 3), seed=0):
    torch.manual_seed(seed)
    return FeedForward(list(sizes))


def test_from_module_computes_the_same_function():
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Flatten(), nn.Linear(12, 9), nn.ReLU(), nn.Dropout(0.5), nn.Linear(9, 4))
    seq.eval()
    net = FeedForward.from_module(seq)
    x = torch.randn(5, 12)
    assert torch.allclose(net(x), seq(x), atol=1e-6)
    with pytest.raises(ConfigError, match="Linear"):
        FeedForward.from_module(nn.Conv2d(1, 2, 3))


def test_pruning_removes_the_smallest_share_per_layer():
    net = _net()
    before = count_params(net)
    pruned = prune_connections(net, 0.5)
    assert pruned == 12 * 10 // 2 + 10 * 8 // 2 + 8 * 3 // 2
    assert count_params(net) <= before - pruned  # dead neurons may go too
    kept = net.layers[-1]
    assert kept.weight_mask.sum() == 12 and torch.all(kept.weight[kept.weight_mask == 0] == 0)


def test_dead_neuron_removal_preserves_the_function():
    """A neuron without inputs outputs relu(bias): folding it into the next biases
    and removing it leaves every output unchanged."""
    net = _net()
    with torch.no_grad():
        net.layers[0].weight_mask[3] = 0.0  # neuron 3 of layer 1: no inputs
        net.layers[0].bias[3] = 0.7
        net.layers[1].weight_mask[:, 5] = 0.0  # neuron 5 of layer 1: no outputs
        net.layers[0].apply_mask()
        net.layers[1].apply_mask()
    x = torch.randn(6, 12)
    y = net(x)
    assert remove_dead_neurons(net) == 2
    assert net.sizes == [12, 8, 8, 3]
    assert torch.allclose(net(x), y, atol=1e-6)


def test_neuron_duplication_keeps_the_function_up_to_noise():
    net = _net()
    x = torch.randn(8, 12)
    with torch.no_grad():
        y = net(x)
    grow_neurons(net, 0.2, "duplicate", np.random.default_rng(0))
    assert net.sizes == [12, 12, 10, 3]
    with torch.no_grad():
        assert torch.allclose(net(x), y, atol=0.05 * float(y.abs().max()))
    grow_neurons(net, 0.5, "random", np.random.default_rng(0))
    assert net.sizes == [12, 18, 15, 3]
    assert net(x).shape == (8, 3)


def test_connection_growth_takes_the_largest_gradients_including_skips():
    net = _net()
    prune_connections(net, 0.6)
    x, y = torch.randn(64, 12), torch.randint(0, 3, (64,))
    grads = connection_gradients(net, net, x, y, allow_skips=True)
    assert set(grads) >= {(3, 0), (3, 1), (2, 0)}  # non-adjacent blocks are candidates
    inactive = {k: (g.abs() * (1 - (net.layers[k[0] - 1].weight_mask if k[1] == k[0] - 1 else 0))).max()
                for k, g in grads.items()}
    top = max(inactive, key=inactive.get)
    active_before = sum(int(b.weight_mask.sum()) for b in net.modules() if hasattr(b, "weight_mask"))
    grown = grow_connections(net, grads, 0.1)
    active_after = sum(int(b.weight_mask.sum()) for b in net.modules() if hasattr(b, "weight_mask"))
    assert grown == int(np.ceil(0.1 * active_before)) and active_after == active_before + grown
    block = net.layers[top[0] - 1] if top[1] == top[0] - 1 else net.skips[f"{top[0]}_{top[1]}"]
    idx = (grads[top].abs() * (block.weight_mask > 0)).argmax()
    assert block.weight_mask.view(-1)[idx] == 1.0  # the single largest gradient was grown
    assert net(x).shape == (64, 3)


def test_scheme_c_grows_no_skip_connections(digits_tabular):
    space = nascore.create("search_space", "ffnn", neurons_low=32, neurons_high=64, neurons_step=32, max_layers=2)
    arch = space.make({"layers": 2, "n1": 64, "n2": 32, "dr_method": "pca", "dr_ratio": 2.0, "quant_bits": 32})
    model = space.build(arch, digits_tabular)
    Ctx().trainer(epochs=3).fit(model, digits_tabular)
    res = SCANN(scheme="C", iterations=4, epochs=2, tolerance=1.0, final_epochs=1, cv_folds=0, max_params_ratio=1.0,
                max_flops_ratio=1.0).compress(arch, model, digits_tabular, Ctx())
    assert res.info["skip_blocks"] == [] and isinstance(res.info["final_training_kept"], bool)
    assert res.after["params"] <= res.before["params"] and res.after["flops"] <= res.before["flops"]
    assert res.after["params"] == model_cost(res.model, digits_tabular.input_shape)["params"]
    assert res.after["valid_accuracy"] >= res.before["valid_accuracy"] - 1.0  # tolerance honoured


def test_scheme_b_compresses_and_respects_max_params(digits_tabular):
    space = nascore.create("search_space", "ffnn", neurons_low=32, neurons_high=64, neurons_step=32, max_layers=2)
    arch = space.make({"layers": 2, "n1": 64, "n2": 64, "dr_method": "pca", "dr_ratio": 1.0, "quant_bits": 32})
    model = space.build(arch, digits_tabular)
    Ctx().trainer(epochs=3).fit(model, digits_tabular)
    limit = count_params(model) // 8
    res = SCANN(scheme="B", iterations=6, epochs=2, max_params=limit, cv_folds=0).compress(
        arch, model, digits_tabular, Ctx())
    ratios = [o["ratio"] for o in res.info["operations"] if o["op"] == "prune"]
    assert len(ratios) == 3 and all(r > 0.3 for r in ratios)  # scheduled to reach the limit, above B's 0.3
    assert res.after["params"] <= limit
    assert res.after["valid_accuracy"] > 80.0  # digits keeps working at an eighth of the weights
    assert res.model(digits_tabular.test.X[:3]).shape == (3, 10)
    with pytest.raises(ConfigError, match="classifier"):
        SCANN().compress(arch, nn.Linear(3, 2), digits_tabular, Ctx())
