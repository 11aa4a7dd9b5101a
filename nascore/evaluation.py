"""Evaluators: train an architecture from scratch, or look it up in a benchmark table.

Both return a :class:`nascore.results.Outcome` with the metric names every evaluator
shares (``valid_accuracy`` is the search's feedback, ``test_accuracy`` is reported and
never used to choose).  Exceptions propagate: the pipeline records a candidate that
raises, diverges or times out as failed and goes on.
"""

from __future__ import annotations

import csv
import math
import os
import re
import threading
from pathlib import Path
from typing import ClassVar

import attrs

from .errors import ConfigError, DatasetNotFoundError, TabularLookupError
from .params import in_range, one_of, param
from .results import OK, STOPPED, Outcome
from .training import Trainer

# --------------------------------------------------------------------------- train


def build_seeded(space, arch, task, seed: int):
    """``space.build(arch, task)`` with its initial weights drawn from ``seed`` (torch's
    global generator is left as it was), so a network is the same whatever ran before."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return space.build(arch, task)


@attrs.define(kw_only=True)
class TrainEvaluator(Trainer):
    """Train each architecture from scratch with the Trainer (its fields are the budget)
    and report valid/test accuracy, params, multiply-adds, CPU latency and the curve."""

    #: it trains on the run's dataset (EvaluatorProtocol.needs_task)
    needs_task: ClassVar[bool] = True

    #: metric names an evaluation reports (the space may add its own: SearchSpace.metrics)
    produces: ClassVar[tuple[str, ...]] = ("valid_accuracy", "test_accuracy", "params", "flops", "train_seconds",
                                           "epochs", "latency_ms", "predicted_accuracy")

    measure_latency: bool = param(True, help="measure CPU latency per sample (latency_ms)")
    latency_repeats: int = param(20, help="timed forward passes for latency_ms (median)", validator=in_range(1))
    final_metric: str = param("last", help="valid_accuracy reported: 'last' epoch's or 'best' epoch's",
                              validator=one_of("last", "best"))

    def trainer(self, **overrides) -> Trainer:
        """A plain :class:`Trainer` with this evaluator's training fields (and ``overrides``)."""
        values = {f.name: getattr(self, f.name) for f in attrs.fields(Trainer)}
        return Trainer(**{**values, **overrides})

    def evaluate(self, arch, space, task, *, seed: int, stopper=None) -> Outcome:
        """Build ``space.build(arch, task)`` with weights seeded by ``seed``, train it and
        measure it.  A ``stopper`` whose ``should_stop`` ends training early gives status
        ``stopped`` and ``metrics["predicted_accuracy"]``."""
        model = build_seeded(space, arch, task, seed)
        fit = self.fit(model, task, seed=seed, should_stop=None if stopper is None else stopper.should_stop)
        metrics = self._measure(model, task, fit)
        metrics.update(space.metrics(arch, model, task))  # what the space knows better (storage bits, pruned params)
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        return Outcome(status=STOPPED if fit.stopped else OK, metrics=metrics, curve=fit.curve, state_dict=state)

    def _measure(self, model, task, fit) -> dict:
        from .metrics import count_flops, count_params, measure_latency_ms

        observed = [r["valid_accuracy"] for r in fit.curve if r.get("valid_accuracy") is not None]
        metrics = {
            "valid_accuracy": (max(observed) if self.final_metric == "best" else observed[-1]) if observed else None,
            "test_accuracy": self.accuracy(model, task.test) if len(task.test) else None,
            "params": count_params(model),
            "flops": count_flops(model, task.input_shape),
            "train_seconds": fit.seconds,
            "epochs": fit.epochs,
        }
        if self.measure_latency:
            metrics["latency_ms"] = measure_latency_ms(model, task.input_shape, repeats=self.latency_repeats)
        if fit.stopped:
            metrics["predicted_accuracy"] = fit.predicted
        return metrics


# --------------------------------------------------------------------------- tabular


def default_table_path() -> Path:
    from .data import data_root

    return data_root() / "nb201" / "nb201.csv"


class BenchmarkTable:
    """A CSV benchmark table read once: rows by key, numeric columns parsed on demand."""

    def __init__(self, path: Path, key_column: str):
        self.path = path
        with path.open(newline="") as f:
            reader = csv.reader(f)
            self.header = next(reader, None)
            if self.header is None:
                raise ConfigError(f"tabular: {path} is empty; it needs a header row naming the key column {key_column!r}")
            rows = [r for r in reader if r]
        if key_column not in self.header:
            raise ConfigError(
                f"tabular: no key column {key_column!r} in {path}; columns: {', '.join(self.header)}"
            )
        self._raw = dict(zip(self.header, zip(*rows))) if rows else {h: () for h in self.header}
        self.index = {k: i for i, k in enumerate(self._raw[key_column])}
        self._columns: dict[str, list] = {}

    def __len__(self) -> int:
        return len(self.index)

    def column(self, name: str) -> list:
        """Column ``name`` as a list of floats (NaN for empty cells)."""
        col = self._columns.get(name)
        if col is None:
            if name not in self._raw:
                raise ConfigError(f"tabular: no column {name!r} in {self.path}; columns: {', '.join(self.header)}")
            try:
                col = [float(v) if v != "" else math.nan for v in self._raw[name]]
            except ValueError:
                raise ConfigError(f"tabular: column {name!r} of {self.path} is not numeric") from None
            self._columns[name] = col
        return col


_TABLES: dict[tuple, BenchmarkTable] = {}
_TABLES_LOCK = threading.Lock()


def load_table(path, key_column: str) -> BenchmarkTable:
    """The table at ``path`` keyed by ``key_column``, cached per process (and file mtime)."""
    path = Path(path).expanduser()
    try:
        mtime = os.stat(path).st_mtime_ns
    except FileNotFoundError:
        raise DatasetNotFoundError(
            f"tabular: no benchmark table at {path}; set path= or NASCORE_DATA (expects nb201/nb201.csv)"
        ) from None
    key = (str(path.resolve()), mtime, key_column)
    with _TABLES_LOCK:
        table = _TABLES.get(key)
        if table is None:
            table = _TABLES[key] = BenchmarkTable(path, key_column)
    return table


#: tables by evaluator configuration, so that a lookup does not stat the file
_BY_CONFIG: dict[tuple, BenchmarkTable] = {}

_EPOCHS = re.compile(r"_(\d+)ep$")


def _none_if_nan(x):
    return None if x is None or math.isnan(x) else x


@attrs.define(kw_only=True)
class TabularEvaluator:
    """Look architectures up in a benchmark table (NAS-Bench-201 by default) keyed by the
    space's string form: ``feedback`` is reported as valid_accuracy, ``report`` as
    test_accuracy.  Each query counts toward the budget like a training run."""

    #: the pipeline need not load the run's dataset for this evaluator
    needs_task: ClassVar[bool] = False
    #: a lookup costs less than an fsync: the run store commits each row without one
    #: (RunStore.relax_sync; a row lost to a power cut is replayed in microseconds)
    cheap: ClassVar[bool] = True
    #: metric names every lookup reports
    produces: ClassVar[tuple[str, ...]] = ("valid_accuracy", "test_accuracy", "params", "flops")

    path: str | None = param(None, help="CSV table; default $NASCORE_DATA/nb201/nb201.csv")
    key_column: str = param("arch_str", help="column holding space.to_string(arch)")
    feedback: str = param("cifar10_valid", help="column reported as valid_accuracy (the search's feedback)")
    report: str = param("cifar10_test", help="column reported as test_accuracy")
    params_column: str | None = param("params_mb_cifar10", help="column of parameter counts; empty: none")
    params_scale: float = param(1e6, help="multiplier turning params_column into a count (1e6 for millions)",
                                validator=in_range(0.0, low_open=True))
    flops_column: str | None = param("flops_m_cifar10", help="column of multiply-adds; empty: none")
    flops_scale: float = param(1e6, help="multiplier turning flops_column into multiply-adds",
                               validator=in_range(0.0, low_open=True))
    curve_columns: list[str] = param(factory=list, help="columns giving a partial-training curve, e.g. cifar10_valid_12ep")

    def table(self) -> BenchmarkTable:
        """The table, loaded on first use and then shared by the process."""
        config = (self.path, self.key_column, None if self.path else os.environ.get("NASCORE_DATA"))
        table = _BY_CONFIG.get(config)
        if table is None:
            table = _BY_CONFIG[config] = load_table(self.path or default_table_path(), self.key_column)
        return table

    def preflight(self, config: dict, space, samples: int = 64) -> None:
        """Before the first lookup: the table exists and is not empty, has every column this
        evaluator reads, and holds the space: ``samples`` architectures drawn from the
        space (seeded) must all be rows.  Raises ConfigError or DatasetNotFoundError."""
        import numpy as np

        table = self.table()
        if not len(table):
            raise ConfigError(f"tabular: {table.path} has a header but no rows")
        for column in (self.feedback, self.report, self.params_column, self.flops_column, *self.curve_columns):
            if column:
                table.column(column)
        rng = np.random.default_rng(0)
        missing = [key for key in (space.to_string(space.sample(rng)) for _ in range(samples)) if key not in table.index]
        if missing:
            raise ConfigError(
                f"tabular: {table.path} does not cover space {space.name!r}: {len(missing)} of {samples} sampled "
                f"architectures are not rows (e.g. {missing[0][:60]!r} in column {self.key_column!r}); "
                "use the table of this space, or the space of this table")

    def evaluate(self, arch, space, task=None, *, seed: int = 0, stopper=None) -> Outcome:
        """The table row of ``space.to_string(arch)``; ``task``, ``seed`` and ``stopper``
        are accepted for the evaluator contract and unused (the table is fixed)."""
        table = self.table()
        key = space.to_string(arch)
        row = table.index.get(key)
        if row is None:
            raise TabularLookupError(
                f"tabular: {key!r} is not in {table.path} ({len(table)} rows keyed by {self.key_column!r}); "
                "check that the space matches the table"
            )
        metrics = {
            "valid_accuracy": _none_if_nan(table.column(self.feedback)[row]),
            "test_accuracy": _none_if_nan(table.column(self.report)[row]),
        }
        for metric, column, scale in (("params", self.params_column, self.params_scale),
                                      ("flops", self.flops_column, self.flops_scale)):
            if column:
                value = _none_if_nan(table.column(column)[row])
                metrics[metric] = None if value is None else int(round(value * scale))
        return Outcome(status=OK, metrics=metrics, curve=self._curve(table, row))

    def _curve(self, table: BenchmarkTable, row: int) -> list:
        """One record per curve column; the epoch is parsed from a ``_<n>ep`` suffix."""
        points = []
        for i, column in enumerate(self.curve_columns):
            match = _EPOCHS.search(column)
            epoch = int(match.group(1)) if match else i + 1
            points.append({"epoch": epoch, "valid_accuracy": _none_if_nan(table.column(column)[row]),
                           "column": column})
        return sorted(points, key=lambda p: p["epoch"])
