"""Post-training weight quantization (nascore.nn.quant, the quantize compressor)."""

import numpy as np
import pytest
import torch
from torch import nn

from nascore.errors import ConfigError
from nascore.nn.quant import fake_quantize, model_size_bits, quantization_step, quantize_weights
from nascore_steerage.layers import MaskedLinear, set_weight_bits


@pytest.mark.parametrize("bits", [4, 8, 16])
@pytest.mark.parametrize("per_channel", [True, False])
def test_error_is_at_most_half_a_step_and_levels_are_few(bits, per_channel):
    w = torch.randn(16, 50, generator=torch.Generator().manual_seed(bits))
    q = fake_quantize(w, bits, per_channel)
    step = quantization_step(w, bits, per_channel)
    eps = torch.finfo(torch.float32).eps * w.abs().max()  # float32 rounding of w / step * step
    assert torch.all((q - w).abs() <= step / 2 + 4 * eps)
    levels = torch.round(q / step)
    assert levels.abs().max() <= 2 ** (bits - 1) - 1  # 2^bits - 1 symmetric levels
    if bits == 4:
        assert len(torch.unique(levels)) <= 15


def test_full_precision_zero_and_bad_bits():
    w = torch.randn(4, 4)
    assert fake_quantize(w, 32) is w
    w[0, 0] = 0.0
    assert fake_quantize(w, 4)[0, 0] == 0.0  # pruned weights stay pruned
    with pytest.raises(ConfigError, match="bits"):
        fake_quantize(w, 1)


def test_quantize_weights_touches_only_weight_matrices():
    model = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.BatchNorm1d(6), nn.Linear(6, 3))
    q = quantize_weights(model, 4)
    assert torch.equal(q[0].bias, model[0].bias) and torch.equal(q[2].weight, model[2].weight)
    assert not torch.equal(q[0].weight, model[0].weight)
    assert len(torch.unique(torch.round(q[0].weight / quantization_step(model[0].weight, 4)))) <= 15


def test_model_size_bits_counts_active_weights():
    lin = MaskedLinear(10, 4)
    lin.weight_mask[:, :5] = 0.0
    # 20 active weights at 8 bits + 4 biases at 32 bits
    assert model_size_bits(lin, 8) == 20 * 8 + 4 * 32


def test_masked_layer_quantizes_in_eval_mode_only():
    torch.manual_seed(0)
    lin = MaskedLinear(20, 5)
    set_weight_bits(lin, 4)
    x = torch.randn(3, 20)
    lin.train()
    assert torch.allclose(lin(x), nn.functional.linear(x, lin.weight, lin.bias))
    lin.eval()
    expected = nn.functional.linear(x, fake_quantize(lin.weight, 4), lin.bias)
    assert torch.allclose(lin(x), expected)
    assert not torch.allclose(lin(x), nn.functional.linear(x, lin.weight, lin.bias))


def test_quantize_compressor_shrinks_storage_not_params(digits_images):
    import nascore
    from nascore.training import Trainer

    space = nascore.create("search_space", "lenet5", input_size=8)
    arch = space.sample(np.random.default_rng(0))
    arch = space.make({**arch.genome, "quant_bits": 32})
    model = space.build(arch, digits_images)
    Trainer(epochs=2, device="cpu").fit(model, digits_images)

    class Ctx:
        seed = 0

        def trainer(self, **o):
            return Trainer(**{"device": "cpu", **o})

    ctx = Ctx()
    ctx.space = space
    res = nascore.create("compressor", "quantize", bits=8).compress(arch, model, digits_images, ctx)
    assert res.after["params"] == res.before["params"] and res.after["flops"] == res.before["flops"]
    assert res.after["model_bits"] < res.before["model_bits"]
    assert res.arch["quant_bits"] == 8
    assert abs(res.after["valid_accuracy"] - res.before["valid_accuracy"]) < 5.0  # 8 bits barely matter
