"""What each kind of component must provide: one ``typing.Protocol`` per kind.

The registry checks every component it builds against its kind's protocol
(:func:`check_protocol`), so a plugin whose object lacks a member fails with one line
naming the missing members, when the component is created, rather than deep inside a run.
The core then calls every member without probing for it.

Members that only some components need (a sampler's ``setup``, a stopper's ``update``, an
evaluator's ``needs_task``, a space's ``metrics``) are still declared members: the small
base classes here (and :class:`nascore.arch.SearchSpace` for spaces) give them their
defaults, so a plugin inherits the default instead of leaving the member out.

The protocols are ``runtime_checkable`` for ``isinstance`` checks in user code; the
registry uses :func:`missing_members`, which also reports *which* members are missing.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, Protocol, Sequence, runtime_checkable

import numpy as np

from .errors import PluginError


@runtime_checkable
class SearchSpaceProtocol(Protocol):
    """A search space (kind ``search_space``): dimensions, operators and views.

    Subclass :class:`nascore.arch.SearchSpace`, which implements everything but
    ``dimensions`` from the declared dimensions; ``build`` (a torch network for a task)
    and ``tokens``/``graph`` are the views encoders, samplers and trainers use."""

    name: str

    def dimensions(self) -> Sequence: ...
    def validate(self, genome) -> dict: ...
    def make(self, genome): ...
    def sample(self, rng: np.random.Generator): ...
    def mutate(self, arch, rng: np.random.Generator, rate: float | None = None): ...
    def crossover(self, a, b, rng: np.random.Generator): ...
    def to_vector(self, arch) -> np.ndarray: ...
    def from_vector(self, u, rng: np.random.Generator | None = None): ...
    def tokens(self, arch) -> list[str]: ...
    def graph(self, arch): ...
    def build(self, arch, task): ...
    def cost(self, arch, task) -> dict: ...

    def metrics(self, arch, model, task) -> dict:
        """Extra metrics of a trained network (e.g. ``model_bits``) that the ``train``
        evaluator records and that override its own; ``{}`` by default."""


@runtime_checkable
class EncoderProtocol(Protocol):
    """Architectures -> feature matrix (kind ``encoder``; scikit-learn transformer contract).

    ``set_space`` binds the space before ``fit`` (the driver calls it);
    :class:`nascore.encoders.ArchitectureEncoder` is a base that implements it."""

    def set_space(self, space) -> Any: ...
    def fit(self, archs, y=None) -> Any: ...
    def transform(self, archs): ...
    def fit_transform(self, archs, y=None): ...
    def get_feature_names_out(self, input_features=None): ...


@runtime_checkable
class PredictorProtocol(Protocol):
    """Features (and observed learning-curve prefixes) -> accuracy (kind ``predictor``;
    scikit-learn regressor contract: ``fit`` returns self, parameters via ``get_params``)."""

    def fit(self, X, y, curves=None) -> Any: ...
    def predict(self, X, curves=None) -> np.ndarray: ...
    def get_params(self, deep: bool = True) -> dict: ...
    def set_params(self, **params) -> Any: ...


@runtime_checkable
class SamplerProtocol(Protocol):
    """Ask/tell proposal of architectures (kind ``sampler``).

    ``setup(ctx)`` is called once before the search with the search context (space, rng,
    state area); ``tell`` receives the evaluations of what was asked, in the order asked."""

    def setup(self, ctx) -> Any: ...
    def ask(self, n: int) -> list: ...
    def tell(self, evaluations) -> None: ...


@runtime_checkable
class OptimizerProtocol(Protocol):
    """A search strategy (kind ``optimizer``): ``run(ctx) -> SearchResult``."""

    def run(self, ctx): ...


@runtime_checkable
class CompressorProtocol(Protocol):
    """Makes the found network smaller or better (kind ``compressor``)."""

    def compress(self, arch, model, task, ctx): ...


@runtime_checkable
class EvaluatorProtocol(Protocol):
    """Turns an architecture into metrics (kind ``evaluator``): train it, or look it up.

    ``needs_task``: whether ``evaluate`` uses the run's dataset (a tabular lookup does
    not, so the driver need not load it); :class:`EvaluatorBase` defaults it to True."""

    needs_task: bool

    def evaluate(self, arch, space, task, *, seed: int = 0, stopper=None): ...


@runtime_checkable
class ExecutorProtocol(Protocol):
    """Runs evaluation jobs (kind ``executor``): in process, a process pool or Ray.

    The context hands a batch to ``each(fn, jobs)``, which yields ``(index, result,
    error)`` as each job finishes (the built-in executors' shared base implements it on
    top of ``submit``, rerunning a dead worker's jobs)."""

    max_workers: int

    def submit(self, fn, *args): ...
    def each(self, fn, jobs): ...
    def shutdown(self) -> None: ...


@runtime_checkable
class StopperProtocol(Protocol):
    """An early-termination rule (kind ``stopper``).

    ``update(history)`` runs in the driver before each batch with every evaluation so far
    (a rule that learns, e.g. SRM, refits there; :class:`StopperBase` makes it a no-op);
    ``should_stop(curve, epochs)`` runs inside training after each epoch and returns
    ``(stop, predicted_final_accuracy_or_None)``."""

    def update(self, evaluations) -> None: ...
    def should_stop(self, curve, epochs: int | None = None): ...


@runtime_checkable
class DatasetProtocol(Protocol):
    """A dataset (kind ``dataset``): its attrs fields are the options; ``load() -> Task``."""

    def load(self): ...


#: component kind -> its protocol
PROTOCOLS: dict[str, type] = {
    "search_space": SearchSpaceProtocol,
    "encoder": EncoderProtocol,
    "predictor": PredictorProtocol,
    "sampler": SamplerProtocol,
    "optimizer": OptimizerProtocol,
    "compressor": CompressorProtocol,
    "evaluator": EvaluatorProtocol,
    "executor": ExecutorProtocol,
    "stopper": StopperProtocol,
    "dataset": DatasetProtocol,
}

#: where a missing member's default lives, for the error message
_DEFAULTS = {
    ("sampler", "setup"): "nascore.api.SamplerBase",
    ("stopper", "update"): "nascore.api.StopperBase",
    ("evaluator", "needs_task"): "nascore.api.EvaluatorBase",
    ("search_space", "metrics"): "nascore.api.SearchSpace",
}


def protocol_members(protocol: type) -> list[str]:
    """The public members (methods and attributes) a protocol declares, in order."""
    names = list(getattr(protocol, "__annotations__", {}))
    names += [n for n, v in vars(protocol).items() if not n.startswith("_") and callable(v)]
    return list(dict.fromkeys(names))


def missing_members(obj, kind: str) -> list[str]:
    """The members of ``kind``'s protocol that ``obj`` lacks (static lookup: no property runs)."""
    sentinel = object()
    return [n for n in protocol_members(PROTOCOLS[kind]) if inspect.getattr_static(obj, n, sentinel) is sentinel]


def check_protocol(obj, kind: str, what: str) -> None:
    """Raise :class:`nascore.errors.PluginError` naming what ``obj`` lacks of its protocol."""
    missing = missing_members(obj, kind)
    if missing:
        hints = [_DEFAULTS[(kind, m)] for m in missing if (kind, m) in _DEFAULTS]
        protocol = PROTOCOLS[kind].__name__
        raise PluginError(
            f"{what} ({type(obj).__module__}.{type(obj).__qualname__}) does not implement the {protocol}: "
            f"missing {', '.join(missing)}" + (f" (inherit the default from {', '.join(hints)})" if hints else "")
        )


class SamplerBase:
    """Defaults for a sampler: ``setup`` keeps the context's space and rng, ``tell`` ignores
    the results (a sampler that learns overrides it)."""

    def setup(self, ctx) -> None:
        self.space = ctx.space
        self.rng = ctx.rng

    def tell(self, evaluations) -> None:
        """A sampler that does not learn ignores the results."""


class StopperBase:
    """Defaults for a stopper: ``update`` learns nothing from the history."""

    def update(self, evaluations) -> None:
        """A fixed rule needs no history."""


class EvaluatorBase:
    """Defaults for an evaluator: it needs the run's dataset."""

    needs_task: ClassVar[bool] = True


__all__ = [
    "SearchSpaceProtocol", "EncoderProtocol", "PredictorProtocol", "SamplerProtocol", "OptimizerProtocol",
    "CompressorProtocol", "EvaluatorProtocol", "ExecutorProtocol", "StopperProtocol", "DatasetProtocol",
    "PROTOCOLS", "protocol_members", "missing_members", "check_protocol",
    "SamplerBase", "StopperBase", "EvaluatorBase",
]
