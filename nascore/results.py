"""Plain result records exchanged between evaluators, the store, optimizers and reports.

All are attrs classes that round-trip through JSON (``to_json`` / ``from_json``)."""

from __future__ import annotations

import math
from typing import Any

import attrs

from .arch import Architecture

OK = "ok"
FAILED = "failed"
STOPPED = "stopped"
STATUSES = (OK, FAILED, STOPPED)

#: metric names shared by every evaluator
METRICS = ("valid_accuracy", "test_accuracy", "params", "flops", "latency_ms", "train_seconds", "epochs")


def _clean(value):
    """JSON-safe copy: NaN/inf become None, tuples lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _clean(value.item())
    return value


@attrs.define
class Outcome:
    """What an evaluator returns for one architecture."""

    status: str = OK
    metrics: dict = attrs.field(factory=dict)
    curve: list = attrs.field(factory=list)
    error: str | None = None
    state_dict: Any = None  # trained weights (kept in memory for the best only)


@attrs.define
class Evaluation:
    """One stored evaluation of one architecture (a row of the run store)."""

    key: str
    space: str
    genome: dict
    status: str
    metrics: dict = attrs.field(factory=dict)
    curve: list = attrs.field(factory=list)
    error: str | None = None
    worker: str | None = None
    started: float | None = None
    finished: float | None = None
    index: int | None = None  # order of completion in the run

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def arch(self) -> Architecture:
        return Architecture(self.space, self.genome)

    def metric(self, name: str = "valid_accuracy", default=None):
        value = self.metrics.get(name, default)
        return default if value is None else value

    def to_json(self) -> dict:
        # field by field: attrs.asdict's deep copy followed by _clean's second copy doubled the cost
        return {name: _clean(getattr(self, name)) for name in _EVALUATION_FIELDS}

    @classmethod
    def from_json(cls, data: dict) -> "Evaluation":
        fields = {f.name for f in attrs.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})


_EVALUATION_FIELDS = tuple(f.name for f in attrs.fields(Evaluation))


@attrs.define
class SearchResult:
    """What an optimizer returns: its chosen architecture and anything it wants reported."""

    best: Architecture | None
    info: dict = attrs.field(factory=dict)
    #: metrics of ``best`` if the optimizer measured them itself (e.g. a final retrain)
    metrics: dict = attrs.field(factory=dict)
    state_dict: Any = None


@attrs.define
class Compressed:
    """What a compressor returns: the new architecture and/or model with costs and accuracy
    before and after (``before``/``after`` hold ``params``, ``flops``, ``valid_accuracy``,
    ``test_accuracy`` where known)."""

    arch: Architecture | None
    model: Any = None
    before: dict = attrs.field(factory=dict)
    after: dict = attrs.field(factory=dict)
    info: dict = attrs.field(factory=dict)

    def to_json(self) -> dict:
        return _clean({
            "arch": None if self.arch is None else self.arch.to_json(),
            "before": self.before, "after": self.after, "info": self.info,
        })
