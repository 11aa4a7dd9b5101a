"""Layers with connection masks and inference-time weight quantization, and their cost.

Grow-and-prune synthesis (SCANN, NeST) switches individual connections on and off.  A
:class:`MaskedLinear` / :class:`MaskedConv2d` keeps its dense ``weight`` next to a
``weight_mask`` buffer (1 = active connection) and computes with ``weight * mask``;
``nascore.metrics.count_params`` counts only active weights.  A convolution may also
carry an ``area_mask`` (one spatial mask per output feature map, NeST's partial-area
convolution): outputs outside a kernel's area of interest are never computed.

STEERAGE quantizes weights *after* training, for inference (section 4.3.1): with
``weight_bits < 32`` a layer computes with fake-quantized weights whenever it is in eval
mode, so every accuracy measured in eval mode is the quantized network's accuracy while
training updates the float weights.  :func:`model_cost` gives params and multiply-adds
with masked connections and area-pruned outputs removed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nascore.nn.quant import FULL_PRECISION, check_bits, fake_quantize


def masked_layers(module: nn.Module) -> list:
    """The masked (prunable, quantizable) layers inside ``module``."""
    return [m for m in module.modules() if isinstance(m, _Masked)]


class _Masked:
    """Shared behaviour: ``weight_mask`` buffer, ``weight_bits``, effective weight."""

    weight_bits: int = FULL_PRECISION
    track_grad: bool = False

    def _init_mask(self, bits: int) -> None:
        self.register_buffer("weight_mask", torch.ones_like(self.weight, dtype=torch.float32))
        self.weight_bits = check_bits(int(bits))
        self.track_grad = False
        self.effective = None

    def effective_weight(self):
        """``weight * mask``, fake-quantized in eval mode when ``weight_bits < 32``.  With
        ``track_grad`` the tensor keeps its gradient: ``dL/dW`` for *every* connection,
        active or not, which gradient-based connection growth ranks."""
        w = self.weight * self.weight_mask
        if self.track_grad:
            w.retain_grad()
            self.effective = w
        if not self.training and self.weight_bits < FULL_PRECISION:
            w = fake_quantize(w, self.weight_bits)
        return w

    @torch.no_grad()
    def apply_mask(self) -> None:
        """Zero the stored weights of inactive connections (so they restart from 0 when
        grown back and do not show up in exported dense weights)."""
        self.weight.mul_(self.weight_mask)


class MaskedLinear(_Masked, nn.Linear):
    """``nn.Linear`` with a connection mask and inference-time weight quantization."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, weight_bits: int = 32):
        super().__init__(in_features, out_features, bias=bias)
        self._init_mask(weight_bits)

    def forward(self, x):
        return F.linear(x, self.effective_weight(), self.bias)


class MaskedConv2d(_Masked, nn.Conv2d):
    """``nn.Conv2d`` with a connection mask, an optional per-feature-map ``area_mask``
    (C_out×H_out×W_out; partial-area convolution) and inference-time quantization."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = True, weight_bits: int = 32):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
        self._init_mask(weight_bits)
        self.register_buffer("area_mask", None)

    def forward(self, x):
        y = self._conv_forward(x, self.effective_weight(), self.bias)
        if self.area_mask is not None:
            y = y * self.area_mask
        return y


def set_weight_bits(model: nn.Module, bits: int) -> None:
    """Set the inference bit width of every masked layer of ``model``."""
    check_bits(bits)
    for m in model.modules():
        if isinstance(m, _Masked):
            m.weight_bits = bits


def _removed_macs(module: nn.Module, output: torch.Tensor) -> int:
    """Multiply-adds a masked layer skips for one sample, given its output."""
    nnz_per_out = module.weight_mask.reshape(module.weight_mask.shape[0], -1).sum(dim=1)
    fan_in = module.weight[0].numel()
    if isinstance(module, MaskedConv2d):
        positions = output.shape[-2] * output.shape[-1]
        area = (module.area_mask.reshape(len(nnz_per_out), -1).sum(dim=1) if module.area_mask is not None
                else torch.full_like(nnz_per_out, positions))
        return int(round(float((fan_in * positions - nnz_per_out * area).sum())))
    positions = output[0].numel() // output.shape[-1]  # 1 for a plain N×F input
    return int(round(float((fan_in - nnz_per_out).sum()))) * positions


def model_cost(model: nn.Module, input_shape) -> dict:
    """``params`` (active weights only) and ``flops`` (multiply-adds per sample, without
    masked connections or area-pruned outputs) of ``model``."""
    from nascore.api import count_flops, count_params

    removed = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: removed.append(_removed_macs(mod, out)))
             for m in model.modules() if isinstance(m, _Masked)]
    try:
        dense = count_flops(model, input_shape)
    finally:
        for h in hooks:
            h.remove()
    return {"params": count_params(model), "flops": max(dense - sum(removed), 0)}
