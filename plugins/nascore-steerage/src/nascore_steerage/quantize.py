"""Post-training weight quantization as a compressor (STEERAGE section 4.3.1).

Quantization "is done in the inference step": the trained float weights of every linear
and convolution layer are rounded to ``bits`` bits with the symmetric uniform quantizer
of :mod:`nascore.nn.quant`, accuracy is measured with the quantized weights, and the
model's weight storage is reported in bits (``model_bits``).  Parameters and FLOPs are
unchanged; what shrinks is the storage.  A model that already computes at fewer bits
than asked keeps its bit width, so the cost never rises.
"""

from __future__ import annotations

import copy

import attrs

import nascore
from nascore.api import one_of
from nascore.api import Compressed

from .layers import _Masked, set_weight_bits
from .synthesis import make_trainer, measure


def inference_bits(model) -> int:
    """The bit width a model computes with (32 unless its masked layers say fewer)."""
    bits = [m.weight_bits for m in model.modules() if isinstance(m, _Masked)]
    return min(bits) if bits else 32


@attrs.define(slots=False)
class Quantize:
    """Post-training quantization of the weights to ``bits`` bits."""

    conformance = {"space": {"name": "lenet5", "input_size": 8}}

    bits: int = nascore.param(8, help="weight bit width: 4, 8, 16 or 32 (full precision)",
                              validator=one_of(4, 8, 16, 32))
    per_channel: bool = nascore.param(True, help="one quantization step per output channel (else per tensor)")

    def compress(self, arch, model, task, ctx) -> Compressed:
        from nascore.nn.quant import model_size_bits, quantize_weights

        trainer = make_trainer(ctx, 1, None)
        current = inference_bits(model)
        bits = min(self.bits, current)
        before = measure(model, task, trainer, test=True)
        before["model_bits"] = model_size_bits(model, current)
        quantized = quantize_weights(copy.deepcopy(model), bits, per_channel=self.per_channel)
        set_weight_bits(quantized, bits)
        after = measure(quantized, task, trainer, test=True)
        after["model_bits"] = model_size_bits(quantized, bits)
        new_arch = arch
        space = getattr(ctx, "space", None)
        if arch is not None and "quant_bits" in arch.genome and space is not None and space.name == arch.space:
            try:
                new_arch = space.make({**arch.genome, "quant_bits": bits})
            except nascore.NascoreError:
                new_arch = arch
        return Compressed(arch=new_arch, model=quantized, before=before, after=after,
                          info={"bits": bits, "requested_bits": self.bits, "per_channel": self.per_channel})
