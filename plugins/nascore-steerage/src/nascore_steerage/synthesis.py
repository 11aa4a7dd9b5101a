"""Shared machinery of the grow-and-prune compressors (STEERAGE section 4.6).

Both SCANN and NeST apply one architecture-changing operation at a time, retrain, and
measure the result on the validation set; "the output of this module is the best
architecture based on evaluation on the validation set" (Algorithm 3).  No size limit
applies unless one is asked for (``max_params``, ``max_params_ratio``,
``max_flops_ratio``): the paper's local search may end larger than its input (Letter:
10.0k vs a 4.4k baseline).  On tabular data every step is also scored by k-fold
cross-validation (:meth:`SelectionParams.cross_validate`), because a validation split
of a few dozen rows ties many steps; the best score wins, ties go to the unchanged
input, then to the smaller network, and ``tolerance`` lets a smaller network within
that many points of the best win instead.
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


def make_trainer(ctx, epochs: int | None, lr: float | None):
    """The run's trainer (``ctx.trainer``, also under the ``cv-train`` evaluator) for
    ``epochs`` (None: the run's), optionally with another lr."""
    overrides = {**({"epochs": epochs} if epochs is not None else {}), **({"lr": lr} if lr else {})}
    if ctx is not None:
        evaluator = dict(getattr(ctx, "config", {}).get("evaluator", {}))
        if evaluator.get("name") == "cv-train":  # the run's trainer is the cv-train evaluator's
            from nascore.api import Trainer, resolved_params

            fields = set(resolved_params(Trainer()))
            return ctx.trainer(**{**{k: v for k, v in evaluator.items() if k in fields}, **overrides})
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
def prune_by_magnitude(blocks, ratio: float, *, largest: bool = False) -> int:
    """Deactivate the ``ratio`` share of the active connections of ``blocks`` (masked
    layers judged together) with the smallest magnitude, or the largest with ``largest``
    (SCANN section 3.1); at least one stays.  Returns how many were pruned."""
    mags = torch.cat([(b.weight.abs() * b.weight_mask).flatten() for b in blocks])
    active = torch.cat([b.weight_mask.flatten() for b in blocks]) > 0
    n_active = int(active.sum())
    k = min(int(math.floor(ratio * n_active)), n_active - 1)
    if k <= 0:
        return 0
    inactive = -1.0 if largest else float("inf")  # never picked among the active ones
    scores = torch.where(active, mags, torch.full_like(mags, inactive))
    drop = torch.topk(scores, k, largest=largest).indices
    flat = torch.ones_like(mags)
    flat[drop] = 0.0
    start = 0
    for b in blocks:
        n = b.weight_mask.numel()
        b.weight_mask.mul_(flat[start:start + n].view_as(b.weight_mask))
        b.apply_mask()
        start += n
    return k


def prune_smallest(blocks, ratio: float) -> int:
    """:func:`prune_by_magnitude` of the smallest-magnitude connections."""
    return prune_by_magnitude(blocks, ratio)


class Selection:
    """Eligible candidates (within the limits, if any) and the rule that picks one.

    A candidate's score is its ``cv_accuracy`` when the compressor cross-validated its
    steps (:meth:`rescore`), else its validation accuracy.  The best score wins; a tie
    goes to the unchanged input (a change must earn its place), then to the smaller
    network -- never to the lowest validation loss, which favours the most confident
    small network on a tiny validation split."""

    def __init__(self, max_params: float = math.inf, max_flops: float = math.inf, tolerance: float = 0.0):
        self.max_params, self.max_flops, self.tolerance = max_params, max_flops, tolerance
        self.candidates: list[tuple[dict, nn.Module]] = []
        self.history: list[dict] = []
        self.fallback: tuple[dict, nn.Module] | None = None

    def offer_input(self, model: nn.Module, metrics: dict) -> None:
        """The unchanged input: returned when no candidate meets the limits."""
        self.fallback = (dict(metrics, step="input", index=0), copy.deepcopy(model))
        self.offer(model, metrics, "input")

    def offer(self, model: nn.Module, metrics: dict, step: str) -> bool:
        """Record a candidate; keep a copy when it is within the limits."""
        eligible = metrics["params"] <= self.max_params and metrics["flops"] <= self.max_flops
        keys = ("params", "flops", "valid_accuracy", "valid_loss")
        index = len(self.history)
        self.history.append({"step": step, "index": index, "eligible": eligible, **{k: metrics.get(k) for k in keys}})
        if eligible:
            self.candidates.append((dict(metrics, step=step, index=index), copy.deepcopy(model)))
        return eligible

    def rescore(self, scores: list[float]) -> None:
        """Robust scores by step index (``scores[i]`` for the i-th offer, input = 0)."""
        for metrics, _ in self.candidates:
            metrics["cv_accuracy"] = float(scores[metrics["index"]])
        for row in self.history:
            row["cv_accuracy"] = float(scores[row["index"]])

    @staticmethod
    def score(metrics: dict) -> float:
        return metrics["cv_accuracy"] if metrics.get("cv_accuracy") is not None else metrics["valid_accuracy"]

    def best(self) -> tuple[dict, nn.Module]:
        """The best-scoring eligible candidate (ties: the input, then fewer params); with
        a ``tolerance``, the smallest within that many points of it.  The unchanged input
        when no candidate met the limits."""
        if not self.candidates:
            return self.fallback
        top = max(self.score(m) for m, _ in self.candidates)
        ok = [mc for mc in self.candidates if self.score(mc[0]) >= top - self.tolerance]
        if self.tolerance > 0:
            return min(ok, key=lambda mc: (mc[0]["params"], mc[0]["index"]))
        return min(ok, key=lambda mc: (mc[0]["step"] != "input", mc[0]["params"], mc[0]["index"]))


@attrs.define(slots=False)
class SelectionParams:
    """Parameters SCANN and NeST share: which results are eligible, how they are scored
    and which one is kept.  No size limit unless one is asked for (the paper has none)."""

    max_params_ratio: float | None = nascore.param(None, help="eligible results have at most this share of the "
                                                              "input's params (none: no relative limit)",
                                                   validator=attrs.validators.optional(in_range(0.0, low_open=True)))
    max_params: int = nascore.param(0, help="eligible results have at most this many params (0: no absolute limit)",
                                    validator=in_range(0))
    max_flops_ratio: float | None = nascore.param(None, help="eligible results have at most this share of the "
                                                             "input's FLOPs (none: no limit)",
                                                  validator=attrs.validators.optional(in_range(0.0, low_open=True)))
    final_epochs: int = nascore.param(3, help="final fine-tuning of the chosen network, kept unless validation drops",
                                      validator=in_range(0))
    tolerance: float = nascore.param(0.0, help="prefer a smaller result within this many points of the best score",
                                     validator=in_range(0.0))
    cv_folds: int | None = nascore.param(None, help="score every step by k-fold cross-validation on train + valid "
                                                    "(none: 5 for tabular data, 0 for images; 0: validation only)",
                                         validator=attrs.validators.optional(in_range(0)))
    cv_seed: int = nascore.param(0, help="seed of the fold assignment")

    def param_limit(self, before: dict) -> float:
        """The eligible parameter count for an input measured as ``before`` (inf: none)."""
        limit = math.inf if self.max_params_ratio is None else before["params"] * self.max_params_ratio
        return min(limit, self.max_params) if self.max_params else limit

    def selection(self, model: nn.Module, before: dict) -> "Selection":
        """A :class:`Selection` for an input ``model`` measured as ``before``."""
        flops = math.inf if self.max_flops_ratio is None else before["flops"] * self.max_flops_ratio
        sel = Selection(self.param_limit(before), flops, self.tolerance)
        sel.offer_input(model, before)
        return sel

    def cross_validate(self, chain, model: nn.Module, task, ctx, seed: int) -> list[float] | None:
        """Scores of the input and of every step by k-fold cross-validation (None when
        ``cv_folds`` resolves to 0).  For each fold of the pooled train + valid rows, the
        input network is trained afresh (same architecture, new weights) on the fold's
        training rows, then ``chain(model, fold_task, record)`` applies the same schedule,
        calling ``record(model)`` after each step; every step is measured on the fold's
        held-out rows and the per-step accuracies are pooled over the folds."""
        from .robust import fold_tasks, pooled_accuracy, reinitialized, resolve_folds

        k = resolve_folds(self.cv_folds, task)
        if k < 2:
            return None
        base = make_trainer(ctx, None, None)
        per_step: list[list[tuple[float, int]]] = []

        for i, sub in enumerate(fold_tasks(task, k, self.cv_seed)):
            fresh = reinitialized(model, seed + 104_729 * (i + 1))
            base.fit(fresh, sub, seed=seed + 104_729 * (i + 1))
            accs = [base.accuracy(fresh, sub.valid)]
            chain(fresh, sub, lambda m, sub=sub, accs=accs: accs.append(base.accuracy(m, sub.valid)))
            for j, a in enumerate(accs):
                if j == len(per_step):
                    per_step.append([])
                per_step[j].append((a, len(sub.valid)))
        return [pooled_accuracy(parts) for parts in per_step]
