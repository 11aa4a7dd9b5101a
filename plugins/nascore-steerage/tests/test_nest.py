"""NeST operations and compressor (section 4.6.2)."""

import numpy as np
import pytest
import torch
from torch import nn

import nascore
from nascore.errors import ConfigError
from nascore.metrics import count_flops
from nascore.testing import check_component
from nascore.training import Trainer
from nascore_steerage.layers import MaskedConv2d, model_cost
from nascore_steerage.nest import NeST, grow_pair, masked_convs, partial_area, prune_smallest


class Ctx:
    seed = 0

    def trainer(self, **overrides):
        return Trainer(**{"device": "cpu", "lr": 0.05, "batch_size": 64, **overrides})


def test_conformance():
    check_component("compressor", "nest")


def _lenet(task, seed=0):
    space = nascore.create("search_space", "lenet5", input_size=8)
    arch = space.make({"image_filter": "lanczos", "image_size": 8, "kernel": 3, "conv1": 6, "pool1": "max",
                       "conv2": 16, "pool2": "avg", "fc1": 4, "fc2": 4, "fc3": 4, "quant_bits": 32})
    torch.manual_seed(seed)
    return space, arch, space.build(arch, task)


def test_growth_with_zero_outgoing_weights_keeps_the_function(digits_images):
    _, _, model = _lenet(digits_images)
    model.eval()
    x = digits_images.valid.X[:5]
    y = model(x)
    for pair in model.growth_pairs():
        producer = model.get_submodule(pair[0])
        grow_pair(model, pair, torch.randn(2, *producer.weight.shape[1:]), None)
    assert model.features[0].out_channels == 8 and model.features[3].in_channels == 8
    assert model.features[3].out_channels == 18
    assert torch.allclose(model(x), y, atol=1e-5)


def test_partial_area_cuts_exactly_the_pruned_positions_flops(digits_images):
    _, _, model = _lenet(digits_images)
    convs = masked_convs(model)
    dense = model_cost(model, digits_images.input_shape)
    pruned = partial_area(model, convs, digits_images, np.random.default_rng(0), 0.5, 64)
    after = model_cost(model, digits_images.input_shape)
    conv1, conv2 = model.features[0], model.features[3]
    # conv1: 8x8 outputs, 6 maps, 9 MACs each; conv2 (valid, after pooling): 2x2 outputs, 16 maps, 6*9 MACs
    removed1 = int((1 - conv1.area_mask).sum()) * 9
    removed2 = int((1 - conv2.area_mask).sum()) * 6 * 9
    assert pruned == int((1 - conv1.area_mask).sum() + (1 - conv2.area_mask).sum())
    assert conv1.area_mask[0].sum() == 32 and conv2.area_mask[0].sum() == 2  # half of each map kept
    assert dense["flops"] - after["flops"] == removed1 + removed2
    assert after["params"] == dense["params"]  # area pruning saves computation, not weights


def test_masked_conv_flops_match_a_direct_count():
    conv = MaskedConv2d(3, 4, 3, padding=1)
    conv.weight_mask[0] = 0.0
    conv.area_mask = torch.ones(4, 6, 6)
    conv.area_mask[1, :3] = 0.0
    dense = count_flops(conv, (3, 6, 6))
    assert dense == 4 * 36 * 27
    expected = dense - 36 * 27 - 18 * 27  # map 0: no weights; map 1: half its positions
    assert model_cost(conv, (3, 6, 6))["flops"] == expected


def test_plain_convolutions_are_converted_without_changing_the_function():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3))
    x = torch.randn(2, 1, 6, 6)
    y = model(x)
    convs = masked_convs(model)
    assert len(convs) == 1 and isinstance(model[0], MaskedConv2d)
    assert torch.allclose(model(x), y)
    with torch.no_grad():
        prune_smallest([model[0]], 0.5)
    assert int(model[0].weight_mask.sum()) == 18


def test_nest_reduces_cost_on_digits(digits_images):
    space, arch, model = _lenet(digits_images)
    Ctx().trainer(epochs=4).fit(model, digits_images)
    res = NeST(iterations=3, epochs=2, candidates=3, prune_ratio=0.5, area_ratio=0.4, max_params_ratio=1.0,
               max_flops_ratio=1.0).compress(arch, model, digits_images, Ctx())
    assert res.after["params"] <= res.before["params"] and res.after["flops"] <= res.before["flops"]
    steps = [s["op"] for s in res.info["operations"]]
    assert steps == ["grow", "area", "prune"]
    assert res.info["operations"][0]["changed"] == 4  # 2 maps on each of the 2 growth pairs
    assert res.model(digits_images.test.X[:2]).shape == (2, 10)
    with pytest.raises(ConfigError, match="schedule"):
        NeST(schedule=["grow", "shrink"])
    with pytest.raises(ConfigError, match="convolutions"):
        NeST().compress(None, nn.Sequential(nn.Linear(4, 2)), digits_images, Ctx())


def test_nest_refuses_a_feed_forward_network(digits_tabular):
    ffnn = nascore.create("search_space", "ffnn", neurons_low=8, neurons_high=16, neurons_step=8, max_layers=1)
    arch = ffnn.sample(np.random.default_rng(0))
    with pytest.raises(ConfigError, match="nest needs a model with convolutions; use scann"):
        NeST().compress(arch, ffnn.build(arch, digits_tabular), digits_tabular, Ctx())


def test_growth_inside_residual_blocks_keeps_the_function(digits_images):
    """ResNet growth pairs are conv1 -> BatchNorm -> conv2 inside a block: new maps with
    zero outgoing weights leave the output unchanged, the BatchNorm grows with them."""
    space = nascore.create("search_space", "resnet", input_size=8, channels=1, width=0.0625)
    arch = space.sample(np.random.default_rng(3))
    torch.manual_seed(0)
    model = space.build(arch, digits_images).eval()
    x = digits_images.valid.X[:4]
    y = model(x)
    pair = model.growth_pairs()[0]
    before = model.get_submodule(pair[1]).num_features
    grow_pair(model, pair, torch.randn(2, *model.get_submodule(pair[0]).weight.shape[1:]), None)
    assert model.get_submodule(pair[1]).num_features == before + 2
    assert torch.allclose(model(x), y, atol=1e-5)


def test_new_maps_connect_as_sparsely_as_their_consumer(digits_images):
    """Growth into a pruned consumer activates its density's share of the new
    connections, chosen by gradient magnitude, so growth stays cheap in a sparse net."""
    from nascore_steerage.nest import grow_feature_maps
    from nascore_steerage.scann import prune_connections

    _, _, model = _lenet(digits_images)
    prune_connections(model.classifier, 0.9)
    first = model.classifier.layers[0]
    density = float(first.weight_mask.mean())
    old_inputs = first.in_features
    grow_feature_maps(model, digits_images, np.random.default_rng(0), candidates=3, maps=1, samples=128)
    new = model.classifier.layers[0].weight_mask[:, old_inputs:]
    assert new.numel() > 0 and abs(float(new.mean()) - density) <= 0.5 / new.numel() + 1e-6  # round(d * n) kept
    conv2 = model.features[3]
    assert conv2.weight_mask[:, -1].mean() == 1.0  # the dense conv consumer stays dense


def _wide_conv_net(seed=0):
    """conv (4 maps, 8x8 kept) -> ReLU -> flatten -> FC 256-10-10: every conv output
    position has its own classifier weights."""
    from nascore_steerage.mlp import FeedForward
    from nascore_steerage.networks import SteerageNet

    torch.manual_seed(seed)
    features = nn.Sequential(MaskedConv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Identity())
    return SteerageNet(nn.Identity(), features, FeedForward([4 * 64, 10, 10]), (("features.0", None, "classifier"),))


def test_partial_area_removes_the_classifier_weights_it_makes_dead(digits_images):
    """Area step at ratio 0.5: each of the 4 maps keeps 32 of its 64 positions, so 4 x 32
    flattened features are always 0 and their 10 outgoing weights each go: params fall
    by exactly 1280 (section 4.6.2), the function is unchanged."""
    model = _wide_conv_net()
    model.eval()
    before = model_cost(model, digits_images.input_shape)
    nest = NeST(area_ratio=0.5, samples=64)
    nest.apply("area", model, digits_images, np.random.default_rng(0))
    x = digits_images.valid.X[:8]
    y = model(x)
    after = model_cost(model, digits_images.input_shape)
    assert before["params"] - after["params"] == 4 * 32 * 10
    assert int(model.classifier.layers[0].weight_mask.sum()) == 4 * 32 * 10
    model.classifier.layers[0].weight_mask.fill_(1.0)  # the removed weights read zeros only
    assert torch.allclose(model(x), y, atol=1e-6)


def test_nest_grows_above_its_input_unless_limited(digits_images):
    """No size cap by default: a growth step (2 maps on each pair) is an eligible result
    larger than the input; with max_params_ratio=1 the same step is ineligible."""
    _, arch, model = _lenet(digits_images)
    Ctx().trainer(epochs=2).fit(model, digits_images)
    free = NeST(iterations=1, schedule=["grow"], epochs=1, candidates=2, final_epochs=0).compress(
        arch, model, digits_images, Ctx())
    grown = free.info["history"][1]
    assert grown["step"] == "grow" and grown["params"] > free.before["params"] and grown["eligible"]
    capped = NeST(iterations=1, schedule=["grow"], epochs=1, candidates=2, final_epochs=0,
                  max_params_ratio=1.0).compress(arch, model, digits_images, Ctx())
    assert not capped.info["history"][1]["eligible"] and capped.info["chosen_step"] == "input"
