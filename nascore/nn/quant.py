"""Post-training weight quantization: fake-quantization helpers shared by the plugins.

STEERAGE (section 4.3.1) quantizes the *trained* network's weights for inference and
searches over the bit width (4, 8, 16 or 32 bits, Table 2).  Here a weight tensor is
quantized with a symmetric uniform quantizer: with ``q = 2**(bits-1) - 1`` levels on
each side and step ``s = max|w| / q`` (per output channel by default), a weight becomes
``s * clamp(round(w / s), -q, q)``.  Rounding to the nearest level keeps the error of
every weight within ``s / 2`` (:func:`quantization_step` gives ``s``), zero stays zero
(so pruned weights stay pruned) and 32 bits means full precision (the float32 weights
are returned unchanged).  Quantized values are kept as floats ("fake" quantization), so
the quantized network runs on any device with the ordinary kernels.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..errors import ConfigError

#: bit widths searched by STEERAGE (Table 2: bins 1-4); 32 is full precision
SUPPORTED_BITS = (4, 8, 16, 32)
FULL_PRECISION = 32


def check_bits(bits: int) -> int:
    """``bits`` as an int in 2..32, or a ConfigError naming the allowed range."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= FULL_PRECISION:
        raise ConfigError(f"quantization bits must be an integer in 2..32 (e.g. 4, 8, 16, 32), got {bits!r}")
    return bits


def quantization_step(weight: torch.Tensor, bits: int, per_channel: bool = True) -> torch.Tensor:
    """The step ``s = max|w| / (2**(bits-1) - 1)``: one value, or one per output channel
    (shaped to broadcast against ``weight``).  All-zero channels get step 1."""
    check_bits(bits)
    levels = 2 ** (bits - 1) - 1
    w = weight.detach().abs()
    if per_channel and w.dim() > 1:
        peak = w.reshape(w.shape[0], -1).amax(dim=1).reshape(-1, *([1] * (w.dim() - 1)))
    else:
        peak = w.amax()
    step = peak / levels
    return torch.where(step > 0, step, torch.ones_like(step))


def fake_quantize(weight: torch.Tensor, bits: int, per_channel: bool = True) -> torch.Tensor:
    """Symmetric uniform quantization of ``weight`` to ``bits`` bits, returned as floats.

    Differentiable in the straight-through sense is not needed: STEERAGE quantizes after
    training, so the result is simply the rounded tensor.  32 bits returns ``weight``.
    """
    if check_bits(bits) >= FULL_PRECISION:
        return weight
    levels = 2 ** (bits - 1) - 1
    step = quantization_step(weight, bits, per_channel)
    return torch.clamp(torch.round(weight / step), -levels, levels) * step


def quantizable(name: str, param: torch.Tensor) -> bool:
    """Weights of linear and convolution layers (matrices and kernels) are quantized;
    biases and normalization parameters stay in float, as usual for weight-only PTQ."""
    return name.rsplit(".", 1)[-1] == "weight" and param.dim() > 1


@torch.no_grad()
def quantize_weights(model: nn.Module, bits: int, per_channel: bool = True, inplace: bool = False) -> nn.Module:
    """Post-training quantization of every weight matrix/kernel of ``model``.

    Returns the quantized model (a deep copy unless ``inplace``).  Masked weights (a
    ``weight_mask`` buffer next to the weight) are zero before and after.
    """
    check_bits(bits)
    target = model if inplace else copy.deepcopy(model)
    if bits >= FULL_PRECISION:
        return target
    for name, param in target.named_parameters():
        if quantizable(name, param):
            param.copy_(fake_quantize(param, bits, per_channel))
    return target


def _weight_mask(model: nn.Module, name: str):
    module_name, _, leaf = name.rpartition(".")
    module = model.get_submodule(module_name) if module_name else model
    return getattr(module, f"{leaf}_mask", None)


def model_size_bits(model: nn.Module, bits: int) -> int:
    """Storage of the model's parameters in bits: quantizable weights at ``bits`` each
    (masked-out weights are not stored), every other parameter at 32 bits."""
    check_bits(bits)
    total = 0
    for name, param in model.named_parameters():
        mask = _weight_mask(model, name)
        count = int(mask.count_nonzero()) if mask is not None else param.numel()
        total += count * (bits if quantizable(name, param) else FULL_PRECISION)
    return total
