"""The ffnn / lenet5 / resnet spaces (Tables 2, 6, 8)."""

import numpy as np
import pytest
import torch

import nascore
from nascore.errors import ConfigError
from nascore.testing import check_component
from nascore_steerage.layers import model_cost
from nascore_steerage.spaces import TABLE6_FC, lenet5_fc_ranges


@pytest.mark.parametrize("name", ["ffnn", "lenet5", "resnet"])
def test_conformance(name):
    check_component("search_space", name)


def test_ffnn_table2_dimensions_and_ratio_cap():
    space = nascore.create("search_space", "ffnn", features=784)
    dims = dict(space.describe())
    assert dims["layers"] == "int 1..6 step 1" and dims["n1"] == "int 50..600 step 25"
    assert dims["dr_ratio"] == "float 1.0..20.0 step 0.1"
    assert space.dimension("dr_method").size == 11 and space.dimension("quant_bits").options == (4, 8, 16, 32)
    small = nascore.create("search_space", "ffnn", features=16)  # letter: ratios up to 16x here
    assert small.dimension("dr_ratio").high == 16.0
    g = small.sample(np.random.default_rng(0)).genome
    assert all(g[f"n{i}"] == 50 for i in range(g["layers"] + 1, 7))  # inactive layers canonical


@pytest.mark.parametrize("params, message", [
    ({"neurons_low": 600, "neurons_high": 50}, "low 600 > high 50"),
    ({"neurons_step": 30}, "does not divide"),
    ({"ratio_step": 0.3}, "does not divide"),
    ({"features": 4, "ratio_low": 5.0, "ratio_high": 6.0}, "leaves < 1"),
    ({"dr_methods": ["pca", "umap"]}, "not one of"),
    ({"bits": [3]}, "not one of"),
])
def test_ffnn_bad_ranges(params, message):
    with pytest.raises(ConfigError, match=message):
        nascore.create("search_space", "ffnn", **params)


def test_image_space_bad_input():
    with pytest.raises(ConfigError, match="larger than the input"):
        nascore.create("search_space", "lenet5", input_size=28, image_sizes=[14, 32])
    with pytest.raises(ConfigError, match="low 20 > high 15"):
        nascore.create("search_space", "lenet5", conv1_low=20, conv1_high=15)
    with pytest.raises(ConfigError, match="odd"):
        nascore.create("search_space", "lenet5", kernels=[4])


def test_build_refuses_a_task_of_another_shape(digits_images, digits_tabular):
    lenet = nascore.create("search_space", "lenet5")  # 28x28 MNIST set-up
    with pytest.raises(ConfigError, match="input_size"):
        lenet.build(lenet.sample(np.random.default_rng(0)), digits_images)
    ffnn = nascore.create("search_space", "ffnn", features=30)
    with pytest.raises(ConfigError, match="features"):
        ffnn.build(ffnn.sample(np.random.default_rng(0)), digits_tabular)


def test_lenet5_ranges_follow_table6_on_mnist():
    for size, ranges in TABLE6_FC.items():
        assert lenet5_fc_ranges(size, 28) == ranges
    space = nascore.create("search_space", "lenet5", fc_reading="hidden")
    assert space.sizes() == [14, 21, 28]
    g = {"image_filter": "lanczos", "image_size": 28, "kernel": 5, "conv1": 6, "pool1": "max", "conv2": 16,
         "pool2": "max", "fc1": 0, "fc2": 8, "fc3": 4, "quant_bits": 32}
    arch = space.make(g)
    assert space.fc_sizes(arch) == [540, 250, 100]
    assert space.tokens(arch) == ["INPUT-28", "C5-6", "MAXPOOL2", "C5-16", "MAXPOOL2", "FC-540", "FC-250",
                                  "FC-100", "Q32"]
    # the image filter is inactive at full size: one key per network
    assert space.make({**g, "image_filter": "box"}) == arch


def _mnist_shaped_task():
    from nascore.api import Split, Task

    x, y = torch.zeros(4, 1, 28, 28), torch.arange(4) % 10
    return Task("mnist-shape", "image", (1, 28, 28), 10, Split(x, y), Split(x, y), Split(x, y))


def test_lenet5_default_reading_fc1_is_the_flattened_conv_output():
    """Table 6's FC1 ranges are conv2 (15-20) x s^2 of the 3x3-kernel maps after the
    second pooling: s = 3, 5, 6 at sides 14, 21, 28 (135-180, 375-500, 540-720).  Under
    that reading the 28x28 space's weight counts bracket the paper's 131.1k GS network
    (Table 7); under the extra-hidden-layer reading even the smallest network is larger."""
    task = _mnist_shaped_task()
    flat = nascore.create("search_space", "lenet5")
    hidden = nascore.create("search_space", "lenet5", fc_reading="hidden")
    g = {"image_filter": "lanczos", "kernel": 3, "pool1": "max", "pool2": "avg", "fc1": 0, "quant_bits": 32}
    for size, ((lo, hi), _, _) in TABLE6_FC.items():
        for conv2, want in ((15, lo), (20, hi)):
            model = flat.build(flat.make({**g, "image_size": size, "conv1": 5, "conv2": conv2, "fc2": 0,
                                          "fc3": 0}), task)
            assert model.classifier.sizes[0] == want
    # fc1 is not searched under the default reading: one key whatever its level
    a = flat.make({**g, "image_size": 28, "conv1": 5, "conv2": 15, "fc2": 0, "fc3": 0})
    assert flat.make({**a.genome, "fc1": 8}) == a and len(flat.fc_sizes(a)) == 2

    def weights(space, kernel, conv1, conv2, level):
        arch = space.make({**g, "image_size": 28, "kernel": kernel, "conv1": conv1, "conv2": conv2,
                           "fc1": level, "fc2": level, "fc3": level})
        return model_cost(space.build(arch, task), (1, 28, 28))["params"]

    # smallest: 3x3, 5/15 filters, the lowest FC levels; largest: 5x5 would flatten less,
    # so the widest flattened output is 3x3 with 20 filters at the highest levels
    lo_flat, hi_flat = weights(flat, 3, 5, 15, 0), weights(flat, 3, 10, 20, 8)
    # 540*100 + 100*50 + 50*10 (+ convs and biases) = 59.5k+; 720*250 + 250*150 + 150*10 = 219k+
    assert 59_500 < lo_flat < 61_000 and 219_000 < hi_flat < 222_000
    assert lo_flat < 131_100 < hi_flat
    assert min(weights(hidden, k, 5, 15, 0) for k in (3, 5)) > 131_100


def test_classic_lenet5_has_the_papers_61706_weights():
    from nascore_steerage.networks import classic_lenet5
    from nascore_steerage.resize import ImageResize

    model = classic_lenet5(ImageResize((28, 28), (28, 28), "lanczos"), 1, 28, 10)
    assert model_cost(model, (1, 28, 28))["params"] == 61706  # Table 7: 62.0k
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_lenet5_builds_and_runs_at_every_size(digits_images):
    space = nascore.create("search_space", "lenet5", input_size=8)
    rng = np.random.default_rng(0)
    for _ in range(12):
        arch = space.sample(rng)
        model = space.build(arch, digits_images)
        assert model(digits_images.train.X[:4]).shape == (4, 10)
        cost = space.cost(arch, digits_images)
        assert cost["model_bits"] <= 32 * cost["params"]


def test_resnet_depth_blocks_and_bottleneck(digits_images):
    space = nascore.create("search_space", "resnet", input_size=8, channels=1, width=0.0625)
    assert space.dimension("conv5_x").describe() == "int 28..48 step 4"  # 448*w .. +5 steps of 64*w
    base = space.sample(np.random.default_rng(0)).genome
    shallow = space.make({**base, **{f"blocks{i}": 2 for i in range(1, 5)}})
    deep = space.make({**base, **{f"blocks{i}": 6 for i in range(1, 5)}})
    assert space.depth(shallow) == 18 and space.depth(deep) == 50
    m18 = space.build(shallow, digits_images)
    m50 = space.build(deep, digits_images)
    names = {type(m).__name__ for m in m50.modules()}
    assert "Bottleneck" in names and "Bottleneck" not in {type(m).__name__ for m in m18.modules()}
    assert m18(digits_images.train.X[:2]).shape == (2, 10)
    assert len(m18.growth_pairs()) == 8  # one pair per basic block


def test_quant_bits_change_inference_only(digits_tabular):
    space = nascore.create("search_space", "ffnn", neurons_low=8, neurons_high=16, neurons_step=8, max_layers=1)
    g = {"layers": 1, "n1": 16, "dr_method": "pca", "dr_ratio": 2.0, "quant_bits": 32}
    torch.manual_seed(0)
    full = space.build(space.make(g), digits_tabular).eval()
    torch.manual_seed(0)
    four = space.build(space.make({**g, "quant_bits": 4}), digits_tabular).eval()
    x = digits_tabular.valid.X[:8]
    assert not torch.allclose(full(x), four(x))
    four.train()
    full.train()
    assert torch.allclose(full(x), four(x))
    c32, c4 = (space.cost(space.make({**g, "quant_bits": b}), digits_tabular) for b in (32, 4))
    assert c32["params"] == c4["params"] and c4["model_bits"] < c32["model_bits"]
