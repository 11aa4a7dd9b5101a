"""The worker job: one architecture to evaluate, and the function that evaluates it.

A job runs in the driver (local executor) or in a worker process (process pool, Ray).  It
carries the live space, evaluator and task when it stays in process, or their resolved
config tables when it crosses a process boundary; a worker rebuilds components from their
tables once and caches them.
"""

from __future__ import annotations

import json
import time
import traceback
from typing import Any

import attrs
import numpy as np

from .arch import Architecture
from .results import FAILED

_worker_cache: dict[str, Any] = {}


def evaluation_seed(run_seed: int, key: str) -> int:
    """Per-candidate seed: independent of evaluation order and executor."""
    return (run_seed * 1_000_003 + int(key[:8], 16)) % (2**31 - 1)


def _cached(kind: str, table: dict, name_key: str = "name"):
    """Build (once per process) a component from its resolved config table."""
    from .plugins import get_registry

    key = kind + json.dumps(table, sort_keys=True, default=str)
    if key not in _worker_cache:
        params = dict(table)
        name = params.pop(name_key)
        _worker_cache[key] = get_registry().create(kind, name, **params)
    return _worker_cache[key]


@attrs.frozen
class EvaluationJob:
    """One architecture to evaluate with a seed, an evaluator and (maybe) a stopper.

    ``space``, ``evaluator`` and ``task`` are either the live objects (the job stays in
    the driver's process) or their resolved config tables (the worker rebuilds them)."""

    genome: dict
    seed: int
    space: Any
    evaluator: Any
    task: Any = None
    stopper: Any = None

    def resolve(self):
        """The live ``(space, evaluator, task)`` of this job; ``task`` is None for an
        evaluator that declares it needs none (a tabular lookup)."""
        space = _cached("search_space", self.space) if isinstance(self.space, dict) else self.space
        evaluator = _cached("evaluator", self.evaluator) if isinstance(self.evaluator, dict) else self.evaluator
        task = self.task
        if isinstance(task, dict):
            if evaluator.needs_task:
                from .data import load_task

                task = load_task(task)
            else:
                task = None
        return space, evaluator, task


def evaluate_job(job: EvaluationJob) -> dict:
    """Evaluate one architecture; runs in the driver or in a worker process.

    Never raises: failures come back as ``status = "failed"`` with the error text."""
    from .executors import worker_id

    started = time.time()
    out = {"worker": worker_id(), "started": started}
    try:
        space, evaluator, task = job.resolve()
        arch = Architecture(space.name, job.genome)
        outcome = evaluator.evaluate(arch, space, task, seed=job.seed, stopper=job.stopper)
        metrics = dict(outcome.metrics)
        bad = [k for k in ("valid_accuracy",) if metrics.get(k) is not None and not np.isfinite(metrics[k])]
        status = outcome.status if not bad else FAILED
        out.update(status=status, metrics=metrics, curve=list(outcome.curve),
                   error=outcome.error if not bad else f"non-finite {bad[0]}",
                   state_dict=outcome.state_dict)
    except Exception as exc:  # noqa: BLE001 - a failing candidate never stops the search
        out.update(status=FAILED, metrics={}, curve=[], state_dict=None,
                   error=f"{type(exc).__name__}: {exc}",
                   traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:])
    out["finished"] = time.time()
    return out
