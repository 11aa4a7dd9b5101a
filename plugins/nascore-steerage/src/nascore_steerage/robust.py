"""Robust scores for STEERAGE's choices: k-fold cross-validation on train + valid.

The paper chooses on the validation set (Algorithm 1's accuracies, the GS answer, the
best SCANN/NeST step).  On small tabular datasets that set has 36-359 rows, so many
architectures tie at the top and the choice is decided by noise.  Here a choice is made
on the *pooled* k-fold accuracy over the training and validation rows (every row held
out exactly once; the test split is never touched), with folds fixed by ``cv_seed`` so
that every architecture and every compressor step is scored on the same folds.

``folds = None`` means "on for tabular data": 5 folds for a task of kind ``tabular``,
none (the plain validation accuracy) for images, where the validation split is large
and k extra trainings are expensive.

:class:`CrossValidatedEvaluator` is the ``cv-train`` evaluator: the ``train`` evaluator
(its weights, valid and test accuracies are those of the network trained on the train
split) plus ``cv_accuracy``, the k-fold score a run uses as its feedback with
``metric = "cv_accuracy"``.
"""

from __future__ import annotations

import copy
from typing import ClassVar

import attrs
import numpy as np
import torch

import nascore
from nascore.api import OK, Split, TrainEvaluator, build_seeded, in_range

DEFAULT_TABULAR_FOLDS = 5


def resolve_folds(folds: int | None, task) -> int:
    """``folds``, or (None) 5 for tabular tasks and 0 (no cross-validation) otherwise."""
    if folds is None:
        return DEFAULT_TABULAR_FOLDS if getattr(task, "kind", None) == "tabular" else 0
    return int(folds)


def fold_tasks(task, folds: int, seed: int) -> list:
    """``folds`` copies of ``task`` whose train/valid splits are the k-fold partition of
    the pooled train + valid rows (stratified when every class has ``folds`` rows; the
    test split is left empty, so nothing here can read it)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    X = torch.cat([task.train.X, task.valid.X])
    y = torch.cat([task.train.y, task.valid.y])
    labels = y.cpu().numpy()
    counts = np.bincount(labels)
    stratify = counts[counts > 0].min() >= folds
    splitter = (StratifiedKFold if stratify else KFold)(n_splits=folds, shuffle=True, random_state=seed)
    empty = Split(X[:0], y[:0])
    out = []
    for tr, va in splitter.split(np.zeros(len(labels)), labels):
        tr, va = torch.as_tensor(tr), torch.as_tensor(va)
        out.append(attrs.evolve(task, train=Split(X[tr], y[tr]), valid=Split(X[va], y[va]), test=empty))
    return out


def pooled_accuracy(parts: list[tuple[float, int]]) -> float:
    """Accuracy over all held-out rows from ``(accuracy %, rows)`` per fold."""
    rows = sum(n for _, n in parts)
    return sum(a * n for a, n in parts) / max(rows, 1)


def reinitialized(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """A copy of ``model`` with fresh weights (every submodule's ``reset_parameters``,
    drawn from ``seed``; masks, buffers and fitted front-ends are kept)."""
    fresh = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in fresh.modules():
            # torch's own convention: a layer with weights offers reset_parameters(), others do not
            if hasattr(m, "reset_parameters") and callable(m.reset_parameters):
                m.reset_parameters()
                apply = getattr(m, "apply_mask", None)
                if callable(apply):
                    with torch.no_grad():
                        apply()
    return fresh


def cv_score(build, trainer, task, folds: int, cv_seed: int, seed: int) -> tuple[float, list[float]]:
    """k-fold accuracy of the networks ``build(fold_task, seed)`` trained by ``trainer``:
    (pooled accuracy %, per-fold accuracies)."""
    parts = []
    for i, sub in enumerate(fold_tasks(task, folds, cv_seed)):
        model = build(sub, seed + 7919 * (i + 1))
        trainer.fit(model, sub, seed=seed + 7919 * (i + 1))
        parts.append((trainer.accuracy(model, sub.valid), len(sub.valid)))
    return pooled_accuracy(parts), [a for a, _ in parts]


@attrs.define(kw_only=True)
class CrossValidatedEvaluator(TrainEvaluator):
    """The ``train`` evaluator plus ``cv_accuracy``: the pooled k-fold accuracy over the
    train + valid rows (robust score for STEERAGE's choices on small datasets)."""

    produces: ClassVar[tuple[str, ...]] = TrainEvaluator.produces + ("cv_accuracy", "cv_folds")

    folds: int | None = nascore.param(None, help="folds of the cross-validation (none: 5 for tabular data, 0 for "
                                                 "images; 0: cv_accuracy is the validation accuracy)",
                                      validator=attrs.validators.optional(in_range(0)))
    cv_seed: int = nascore.param(0, help="seed of the fold assignment (the same folds for every architecture)")

    def evaluate(self, arch, space, task, *, seed: int, stopper=None):
        outcome = super().evaluate(arch, space, task, seed=seed, stopper=stopper)
        k = resolve_folds(self.folds, task)
        if outcome.status != OK or k < 2:
            outcome.metrics["cv_accuracy"] = outcome.metrics.get("valid_accuracy")
            outcome.metrics["cv_folds"] = 0
            return outcome
        score, _ = cv_score(lambda sub, s: build_seeded(space, arch, sub, s), self.trainer(), task, k,
                            self.cv_seed, seed)
        outcome.metrics["cv_accuracy"] = score
        outcome.metrics["cv_folds"] = k
        return outcome
