"""Model costs (parameters, multiply-adds, CPU latency) and rank/regression metrics.

Conventions (``docs/contracts.md``): ``flops`` are multiply-adds (MACs) of one input
sample, as NAS-Bench-201 and the NAT and MS-RANAS papers report them ("MAdds").
:func:`count_flops` uses ``torch.utils.flop_counter.FlopCounterMode``, which counts
matrix products and convolutions as 2 FLOPs per multiply-add and ignores element-wise
operations (activations, BatchNorm at inference, pooling, additions); its total is
halved, so the result is the multiply-adds of the convolution and linear layers -- the
quantity NAS-Bench-201's ``flops`` columns hold.
"""

from __future__ import annotations

import copy
import time

from .device import model_device


def _masked_count(module, name: str) -> int | None:
    """Nonzero mask entries when parameter ``name`` is pruned by a mask buffer, else None.

    Recognizes ``torch.nn.utils.prune`` (parameter ``weight_orig`` + buffer
    ``weight_mask``) and compressors that keep ``weight`` next to a ``weight_mask`` buffer."""
    buffers = module._buffers
    base = name[: -len("_orig")] if name.endswith("_orig") else name
    mask = buffers.get(base + "_mask")
    if mask is None:
        return None
    return int((mask != 0).sum())


def count_params(model) -> int:
    """Trainable parameters of ``model``; a parameter masked by a ``<name>_mask`` buffer
    counts only its unmasked (nonzero-mask) entries."""
    total = 0
    for module in model.modules():
        for name, p in module._parameters.items():
            if p is None or not p.requires_grad:
                continue
            masked = _masked_count(module, name)
            total += p.numel() if masked is None else masked
    return total


def count_flops(model, input_shape) -> int:
    """Multiply-adds of one forward pass on a single input of shape ``input_shape``
    (every exit of a multi-exit model included), counted in eval mode without gradients."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    device = model_device(model, default="cpu")
    x = torch.zeros((1, *tuple(input_shape)), device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops()) // 2


def measure_latency_ms(model, input_shape, repeats: int = 20, batch: int = 1, warmup: int = 3) -> float:
    """Median CPU wall time per sample in milliseconds of a forward pass on a batch of
    ``batch`` inputs, after ``warmup`` passes.  A model on another device is measured on
    a CPU copy; the model itself is left untouched."""
    import torch

    cpu_model = model if model_device(model, default="cpu").type == "cpu" else copy.deepcopy(model).cpu()
    x = torch.zeros((batch, *tuple(input_shape)))
    was_training = cpu_model.training
    cpu_model.eval()
    times = []
    try:
        with torch.inference_mode():
            for i in range(warmup + max(repeats, 1)):
                t0 = time.perf_counter()
                cpu_model(x)
                if i >= warmup:
                    times.append(time.perf_counter() - t0)
    finally:
        cpu_model.train(was_training)
    times.sort()
    return 1000.0 * times[len(times) // 2] / batch


def kendall_tau(a, b) -> float:
    """Kendall rank correlation (tau-b) of two sequences; NaN when one is constant."""
    from scipy.stats import kendalltau

    return float(kendalltau(a, b).statistic)


def spearman(a, b) -> float:
    """Spearman rank correlation of two sequences; NaN when one is constant."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def r2(y_true, y_pred) -> float:
    """Coefficient of determination R^2 of predictions (1 is perfect, can be negative)."""
    from sklearn.metrics import r2_score

    return float(r2_score(y_true, y_pred))
