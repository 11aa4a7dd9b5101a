"""Anytime evaluation of multi-exit networks (Sections 4.2-4.3 of the MS-RANAS paper).

* per exit: accuracy, cumulative multiply-adds (MFLOPs), parameters and measured CPU
  latency; the cost of exit ``k`` is what an anytime evaluation has computed when it
  reaches exit ``k``: every node exits ``0..k`` depend on plus their classifiers
  (``MultiScaleNetworkBase.forward_until``);
* budgeted prediction, Eq. 4: with a budget ``B`` per sample, the prediction is that of
  the deepest exit whose cost fits in ``B`` (none fits: the sample counts as an error),
  and the expected 0-1 loss over ``P(x, B)`` is one minus the expected accuracy;
* confidence-threshold exiting (budgeted batch classification, MSDNet Section 4): a
  sample leaves at the first exit whose top softmax probability reaches the threshold;
* the area under the accuracy-MFLOPs curve, the selection criterion the paper proposes
  as future work (Section 5): the anytime accuracy averaged over budgets uniform on
  ``[0, max_flops]``, i.e. Eq. 4 with a uniform budget distribution.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from nascore.api import ConfigError

from .network import MultiScaleNetworkBase


def _as_costs(exit_flops) -> np.ndarray:
    flops = np.asarray(exit_flops, dtype=float).ravel()
    if flops.size == 0:
        raise ConfigError("need the cost of at least one exit")
    if np.any(np.diff(flops) < 0):
        raise ConfigError(f"exit costs must be cumulative (non-decreasing), got {flops.tolist()}")
    return flops


def exit_for_budget(exit_flops, budgets) -> np.ndarray:
    """Index of the deepest exit whose cumulative cost is within each budget; -1 if none."""
    flops = _as_costs(exit_flops)
    return np.searchsorted(flops, np.asarray(budgets, dtype=float), side="right") - 1


def budgeted_accuracy(correct, exit_flops, budgets) -> float:
    """Eq. 4 with the 0-1 loss: expected accuracy (percent) over samples ``x_i`` with their
    own budgets ``B_i`` (an array of N, or one budget for all).

    ``correct`` is an ``N x K`` boolean matrix (sample i right at exit k).
    """
    correct = np.asarray(correct, dtype=bool)
    if correct.ndim != 2:
        raise ConfigError(f"correct must be a samples x exits matrix, got shape {correct.shape}")
    n, k = correct.shape
    if len(_as_costs(exit_flops)) != k:
        raise ConfigError(f"{k} exits in correct but {len(np.ravel(exit_flops))} exit costs")
    chosen = np.broadcast_to(exit_for_budget(exit_flops, budgets), (n,))
    hit = np.where(chosen >= 0, correct[np.arange(n), np.maximum(chosen, 0)], False)
    return 100.0 * float(hit.mean())


def expected_accuracy(exit_accuracy, exit_flops, budget_values, budget_probs=None) -> float:
    """Eq. 4 for a budget independent of the sample: ``sum_b P(b) acc(exit(b))`` (percent);
    ``budget_probs`` defaults to uniform over ``budget_values``."""
    acc = np.asarray(exit_accuracy, dtype=float).ravel()
    values = np.asarray(budget_values, dtype=float).ravel()
    probs = np.full(values.size, 1.0 / values.size) if budget_probs is None else np.asarray(budget_probs, float)
    if probs.shape != values.shape or np.any(probs < 0) or not np.isclose(probs.sum(), 1.0):
        raise ConfigError("budget_probs must be non-negative, one per budget value, and sum to 1")
    if len(_as_costs(exit_flops)) != acc.size:
        raise ConfigError(f"{acc.size} exit accuracies but {len(np.ravel(exit_flops))} exit costs")
    chosen = exit_for_budget(exit_flops, values)
    return float(np.sum(probs * np.where(chosen >= 0, acc[np.maximum(chosen, 0)], 0.0)))


def anytime_area(exit_accuracy, exit_flops, max_flops: float | None = None) -> float:
    """Normalized area under the anytime accuracy-MFLOPs step curve on ``[0, max_flops]``
    (default: the last exit's cost): Eq. 4 with ``B ~ Uniform(0, max_flops)``, in percent."""
    acc = np.asarray(exit_accuracy, dtype=float).ravel()
    flops = _as_costs(exit_flops)
    if flops.size != acc.size:
        raise ConfigError(f"{acc.size} exit accuracies but {flops.size} exit costs")
    top = float(flops[-1] if max_flops is None else max_flops)
    if top <= 0:
        raise ConfigError(f"max_flops must be positive, got {top}")
    edges = np.append(np.minimum(flops, top), top)
    widths = np.diff(edges)  # exit k answers for budgets in [flops_k, flops_{k+1})
    return float(np.sum(widths * acc) / top)


def threshold_exit(probs, labels, exit_flops, thresholds) -> dict:
    """Confidence-threshold exiting: each sample leaves at the first exit ``k`` whose top
    softmax probability is >= ``thresholds[k]`` (the last exit takes the rest).

    ``probs``: ``K x N x C`` softmax outputs; ``thresholds``: one number or one per exit.
    Returns accuracy (percent), mean cost per sample and the share leaving at each exit.
    """
    probs = np.asarray(probs, dtype=float)
    labels = np.asarray(labels)
    flops = _as_costs(exit_flops)
    k, n = probs.shape[:2]
    if flops.size != k:
        raise ConfigError(f"{k} exits in probs but {flops.size} exit costs")
    thr = np.broadcast_to(np.asarray(thresholds, dtype=float), (k,)).copy()
    thr[-1] = -np.inf
    confident = probs.max(axis=2) >= thr[:, None]  # K x N
    exit_of = confident.argmax(axis=0)
    pred = probs.argmax(axis=2)[exit_of, np.arange(n)]
    share = np.bincount(exit_of, minlength=k) / n
    return {"accuracy": 100.0 * float((pred == labels).mean()), "flops": float(flops[exit_of].mean()),
            "exit_share": share.tolist()}


def threshold_curve(probs, labels, exit_flops, thresholds: Sequence[float] | None = None) -> list[dict]:
    """Accuracy vs mean cost of confidence-threshold exiting over a sweep of one shared
    threshold (default: 0 and the 1 - 2^-j, j = 1..12, plus "never exit early")."""
    if thresholds is None:
        thresholds = [0.0] + [1.0 - 2.0 ** -j for j in range(1, 13)] + [np.inf]
    return [{"threshold": float(t), **threshold_exit(probs, labels, exit_flops, t)} for t in thresholds]


# --------------------------------------------------------------------------- models


def num_exits(model) -> int:
    return int(getattr(model, "num_exits", 1))


def exit_probabilities(model, X, batch_size: int = 512):
    """Softmax outputs ``K x N x C`` (a torch tensor on the CPU) of every exit on ``X``."""
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    chunks = []
    with torch.no_grad():
        for i in range(0, len(X), batch_size):
            out = model(X[i:i + batch_size].to(device))
            outs = out if isinstance(out, (list, tuple)) else [out]
            chunks.append(torch.stack([o.softmax(dim=1) for o in outs]).cpu())
    model.train(was)
    return torch.cat(chunks, dim=1)


class ExitsUpTo(nn.Module):
    """A module view of a multi-exit network that computes only exits ``0..k``."""

    def __init__(self, model: nn.Module, k: int):
        super().__init__()
        self.net, self.k = model, k

    def forward(self, x):
        if isinstance(self.net, MultiScaleNetworkBase):  # stop at exit k; other networks have one exit
            return self.net.forward_until(x, self.k)
        return self.net(x)


def _params_used(model, k: int, input_shape) -> int:
    """Parameters of the modules a forward up to exit ``k`` runs."""
    used: set[int] = set()
    hooks = [m.register_forward_hook(lambda mod, i, o: used.add(id(mod))) for m in model.modules()]
    try:
        with torch.no_grad():
            was = model.training
            model.eval()
            ExitsUpTo(model, k)(torch.zeros((1, *input_shape), device=next(model.parameters()).device))
            model.train(was)
    finally:
        for h in hooks:
            h.remove()
    return sum(p.numel() for m in model.modules() if id(m) in used
               for p in m.parameters(recurse=False) if p.requires_grad)


def exit_costs(model, input_shape, latency_repeats: int = 10) -> list[dict]:
    """Per exit: cumulative ``flops`` (multiply-adds), ``params`` of what has run, and
    measured CPU ``latency_ms`` per sample, for an anytime evaluation (Section 4.3)."""
    from nascore.api import count_flops, measure_latency_ms

    shape = tuple(int(s) for s in input_shape)
    out = []
    for k in range(num_exits(model)):
        view = ExitsUpTo(model, k)
        row = {"exit": k + 1, "flops": count_flops(view, shape), "params": _params_used(model, k, shape)}
        if latency_repeats:
            row["latency_ms"] = measure_latency_ms(view, shape, repeats=latency_repeats)
        out.append(row)
    return out


def anytime_table(model, split, input_shape, latency_repeats: int = 10) -> list[dict]:
    """One row per exit: ``exit``, ``accuracy`` (percent on ``split``), ``flops``,
    ``mflops``, ``params``, ``latency_ms``."""
    probs = exit_probabilities(model, split.X)
    correct = (probs.argmax(dim=2) == split.y.cpu()[None, :]).double().mean(dim=1) * 100.0
    rows = exit_costs(model, input_shape, latency_repeats)
    for row, acc in zip(rows, correct.tolist()):
        row["accuracy"] = acc
        row["mflops"] = row["flops"] / 1e6
    return rows


def summarize(rows: list[dict], probs=None, labels=None, max_flops: float | None = None) -> dict:
    """Headline anytime numbers of a table: first/last exit accuracy, the first exit's
    share of the MFLOPs, the gap in points, and the area score; with ``probs`` and
    ``labels`` also the confidence-threshold curve."""
    acc = [r["accuracy"] for r in rows]
    flops = [r["flops"] for r in rows]
    out = {
        "exits": len(rows), "first_accuracy": acc[0], "last_accuracy": acc[-1],
        "gap_points": acc[-1] - acc[0], "first_flops_share": flops[0] / flops[-1],
        "area": anytime_area(acc, flops, max_flops),
    }
    if probs is not None and labels is not None:
        out["threshold_curve"] = threshold_curve(np.asarray(probs), np.asarray(labels), flops)
    return out
