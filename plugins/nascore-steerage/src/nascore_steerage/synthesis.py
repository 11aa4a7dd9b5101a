"""Shared machinery of the grow-and-prune compressors (STEERAGE section 4.6).

Both SCANN and NeST apply one architecture-changing operation at a time, retrain, and
measure the result on the validation set; "the output of this module is the best
architecture based on evaluation on the validation set" (Algorithm 3).  A compressor
must never return a network that costs more than the one it was given, so only
candidates within the parameter and FLOP limits are eligible; among those the most
accurate on validation wins, and ``tolerance`` lets a smaller network within that many
points of the best win instead.  :class:`Selection` keeps only the Pareto front
(validation accuracy vs. parameters) because no dominated candidate can ever be chosen.
"""

from __future__ import annotations

import copy
import math

import attrs

import numpy as np
import torch
from torch import nn

import nascore
from nascore.api import in_range

from .layers import model_cost


def make_trainer(ctx, epochs: int, lr: float | None):
    """The run's trainer (``ctx.trainer``) for ``epochs``, optionally with another lr."""
    overrides = {"epochs": epochs, **({"lr": lr} if lr else {})}
    if ctx is not None:
        return ctx.trainer(**overrides)
    from nascore.api import Trainer

    return Trainer(**overrides)


@torch.no_grad()
def validation_loss(model: nn.Module, split, batch: int = 1024) -> float:
    """Mean cross-entropy of ``model`` (eval mode) on ``split`` (the last exit of a
    multi-exit network)."""
    was = model.training
    model.eval()
    device = device_of(model)
    total = 0.0
    for i in range(0, len(split), batch):
        out = model(split.X[i:i + batch].to(device))
        out = out[-1] if isinstance(out, (list, tuple)) else out
        total += float(torch.nn.functional.cross_entropy(out, split.y[i:i + batch].to(device), reduction="sum"))
    model.train(was)
    return total / max(len(split), 1)


def measure(model: nn.Module, task, trainer, test: bool = False) -> dict:
    """Params and FLOPs (pruned connections removed), validation accuracy and loss, and
    (with ``test``) test accuracy."""
    out = model_cost(model, task.input_shape)
    out["valid_accuracy"] = trainer.accuracy(model, task.valid)
    out["valid_loss"] = validation_loss(model, task.valid)
    if test:
        out["test_accuracy"] = trainer.accuracy(model, task.test)
    return out


def finish(chosen: tuple[dict, nn.Module], task, trainer, epochs: int, seed: int) -> tuple[dict, nn.Module, bool]:
    """Train the chosen network ``epochs`` more (masks kept, so its cost is unchanged);
    keep the result unless its validation accuracy drops.  Returns (metrics, model,
    whether the extra training was kept)."""
    metrics, model = chosen
    if epochs <= 0:
        return metrics, model, False
    tuned = copy.deepcopy(model)
    attrs.evolve(trainer, epochs=epochs).fit(tuned, task, seed=seed)
    tuned_metrics = measure(tuned, task, trainer)
    if tuned_metrics["valid_accuracy"] >= metrics["valid_accuracy"]:
        return dict(tuned_metrics, step=metrics.get("step")), tuned, True
    return metrics, model, False


def train_batch(task, n: int, rng: np.random.Generator, device) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random training samples (for gradients and activation statistics)."""
    idx = torch.as_tensor(rng.choice(len(task.train), size=min(n, len(task.train)), replace=False))
    return task.train.X[idx].to(device), task.train.y[idx].to(device)


def device_of(model: nn.Module):
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def set_module(root: nn.Module, path: str, module: nn.Module) -> None:
    """Replace the submodule at dotted ``path``."""
    parent_path, _, leaf = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    if isinstance(parent, (nn.Sequential, nn.ModuleList)) and leaf.isdigit():
        parent[int(leaf)] = module
    else:
        setattr(parent, leaf, module)


@torch.no_grad()
def prune_smallest(blocks, ratio: float) -> int:
    """Deactivate the ``ratio`` share of the active connections of ``blocks`` (masked
    layers judged together) with the smallest magnitude; at least one stays.  Returns
    how many were pruned."""
    mags = torch.cat([(b.weight.abs() * b.weight_mask).flatten() for b in blocks])
    active = torch.cat([b.weight_mask.flatten() for b in blocks]) > 0
    n_active = int(active.sum())
    k = min(int(math.floor(ratio * n_active)), n_active - 1)
    if k <= 0:
        return 0
    scores = torch.where(active, mags, torch.full_like(mags, float("inf")))
    drop = torch.topk(scores, k, largest=False).indices
    flat = torch.ones_like(mags)
    flat[drop] = 0.0
    start = 0
    for b in blocks:
        n = b.weight_mask.numel()
        b.weight_mask.mul_(flat[start:start + n].view_as(b.weight_mask))
        b.apply_mask()
        start += n
    return k


class Selection:
    """Eligible candidates (within the limits) and the rule that picks one."""

    def __init__(self, max_params: float, max_flops: float, tolerance: float = 0.0):
        self.max_params, self.max_flops, self.tolerance = max_params, max_flops, tolerance
        self.candidates: list[tuple[dict, nn.Module]] = []
        self.history: list[dict] = []
        self.fallback: tuple[dict, nn.Module] | None = None

    def offer_input(self, model: nn.Module, metrics: dict) -> None:
        """The unchanged input: returned when no candidate meets the limits."""
        self.fallback = (dict(metrics, step="input"), copy.deepcopy(model))
        self.offer(model, metrics, "input")

    def offer(self, model: nn.Module, metrics: dict, step: str) -> bool:
        """Record a candidate; keep a copy when it is within the limits."""
        eligible = metrics["params"] <= self.max_params and metrics["flops"] <= self.max_flops
        keys = ("params", "flops", "valid_accuracy", "valid_loss")
        self.history.append({"step": step, "eligible": eligible, **{k: metrics.get(k) for k in keys}})
        if eligible:
            self.candidates.append((dict(metrics, step=step), copy.deepcopy(model)))
        return eligible

    def best(self) -> tuple[dict, nn.Module]:
        """The most accurate eligible candidate (ties: lower validation loss); with a
        ``tolerance``, the smallest within that many points of it.  The unchanged input
        when no candidate met the limits."""
        if not self.candidates:
            return self.fallback
        top = max(m["valid_accuracy"] for m, _ in self.candidates)
        if self.tolerance > 0:
            ok = [mc for mc in self.candidates if mc[0]["valid_accuracy"] >= top - self.tolerance]
            return min(ok, key=lambda mc: (mc[0]["params"], mc[0].get("valid_loss", 0.0)))
        ok = [mc for mc in self.candidates if mc[0]["valid_accuracy"] >= top]
        return min(ok, key=lambda mc: (mc[0].get("valid_loss", 0.0), mc[0]["params"]))


@attrs.define(slots=False)
class SelectionParams:
    """Parameters SCANN and NeST share: which results are eligible and which one is kept."""

    max_params_ratio: float = nascore.param(1.0, help="eligible results have at most this share of the input's params",
                                            validator=in_range(0.0, 1.0, low_open=True))
    max_params: int = nascore.param(0, help="eligible results have at most this many params (0: no absolute limit)",
                                    validator=in_range(0))
    final_epochs: int = nascore.param(0, help="extra training of the chosen network, kept unless validation drops",
                                      validator=in_range(0))
    tolerance: float = nascore.param(0.0, help="prefer a smaller result within this many validation points of the best",
                                     validator=in_range(0.0))

    def selection(self, model: nn.Module, before: dict) -> "Selection":
        """A :class:`Selection` for an input ``model`` measured as ``before``."""
        limit = before["params"] * self.max_params_ratio
        sel = Selection(min(limit, self.max_params) if self.max_params else limit, before["flops"], self.tolerance)
        sel.offer_input(model, before)
        return sel
