"""Conformance checks for every kind of component (like scikit-learn's ``check_estimator``).

``check_component(kind, name)`` builds a registered component and runs the checks of
its kind; ``conformance_cases()`` lists ``(kind, name)`` for every registered component,
for ``pytest.mark.parametrize``.  Third-party plugins get these checks for free::

    @pytest.mark.parametrize("kind,name", conformance_cases(plugin="myplugin"))
    def test_conformance(kind, name):
        check_component(kind, name)

A component can steer its checks with an optional class attribute ``conformance``: a
dict with ``params`` (used to build it small and fast), ``space`` (a space name or
``{"name": ..., params}`` it works with) and ``skip`` (a reason to skip the generic run).
"""

from __future__ import annotations

import json
import pickle
from typing import Any

import attrs
import numpy as np

from .arch import Architecture, SearchSpace
from .errors import InvalidGenomeError, PluginError
from .results import OK, Evaluation, Outcome, SearchResult


def require_data(relative: str):
    """Path of ``relative`` under ``nascore.data.data_root()``; skips the calling test when it is
    absent, and fails it instead when ``NASCORE_REQUIRE_DATA=1`` (as CI sets)."""
    import os

    import pytest

    from .data import data_root

    path = data_root() / relative
    if not path.exists():
        if os.environ.get("NASCORE_REQUIRE_DATA") == "1":
            pytest.fail(f"{path} is missing and NASCORE_REQUIRE_DATA=1")
        pytest.skip(f"{path} is missing (set NASCORE_DATA)")
    return path


class ConformanceError(AssertionError):
    """A component broke its kind's contract."""


def _fail(what: str, msg: str):
    raise ConformanceError(f"{what}: {msg}")


def _conformance(factory) -> dict:
    from .params import component_class

    cls = component_class(factory)
    return dict(getattr(cls, "conformance", None) or getattr(factory, "conformance", None) or {})


def conformance_cases(kind: str | None = None, plugin: str | None = None) -> list[tuple[str, str]]:
    from .plugins import get_registry

    return [(c.kind, c.name) for c in get_registry().components(kind) if plugin is None or c.plugin == plugin]


def check_component(kind: str, name: str, **params) -> Any:
    """Build ``name`` of ``kind`` and run the checks of its kind; returns the component."""
    from .plugins import get_registry

    registry = get_registry()
    comp = registry.get(kind, name)
    conf = _conformance(comp.factory)
    if conf.get("skip"):
        import pytest

        pytest.skip(conf["skip"])
    given = {**conf.get("params", {}), **params}
    required = [p.name for p in comp.params() if p.required and p.name not in given]
    if required:
        import pytest

        pytest.skip(f"{comp.kind} {comp.name!r} needs parameter {required[0]!r}; declare conformance params to check it")
    what = f"{comp.kind} {comp.name!r} ({comp.plugin})"
    try:  # the registry checks the product against its kind's protocol (nascore.protocols)
        built = registry.create(comp.kind, comp.name, **given)
    except PluginError as exc:
        _fail(what, str(exc))
    _check_params_roundtrip(what, comp, built)
    checker = _CHECKS.get(comp.kind)
    if checker is not None:
        checker(what, built, conf)
    return built


def _check_params_roundtrip(what, comp, built) -> None:
    from .params import resolved_params

    params = resolved_params(built)
    json.dumps(params, default=list)  # every parameter must be JSON/TOML friendly
    from .plugins import get_registry

    again = get_registry().create(comp.kind, comp.name, **{k: v for k, v in params.items() if v is not None})
    if resolved_params(again) != params:
        _fail(what, "rebuilding from its resolved parameters gives different parameters")


def _space_for(conf: dict, default: str = "nb201") -> SearchSpace:
    from . import create

    spec = conf.get("space", default)
    if isinstance(spec, str):
        return create("search_space", spec)
    spec = dict(spec)
    return create("search_space", spec.pop("name"), **spec)


# --------------------------------------------------------------------------- spaces


def check_search_space(what: str, space: SearchSpace, conf: dict | None = None, n: int = 30) -> None:
    if not isinstance(space, SearchSpace):
        _fail(what, "is not a nascore.arch.SearchSpace")
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(n)]
    for a in archs:
        if a.space != space.name:
            _fail(what, f"sampled architecture names space {a.space!r}")
        if space.make(a.genome) != a:
            _fail(what, f"sample is not canonical: {a.genome}")
        if Architecture.from_json(json.loads(json.dumps(a.to_json()))) != a:
            _fail(what, "JSON round trip changes the architecture")
        v = space.to_vector(a)
        if v.shape != (space.num_dimensions,) or np.any(v < 0) or np.any(v > 1):
            _fail(what, f"to_vector is not in the unit cube: {v}")
        if space.from_vector(v) != a:
            _fail(what, f"from_vector(to_vector(a)) != a for {a.genome}")
        m = space.mutate(a, rng)
        space.validate(m.genome)
        c = space.crossover(a, archs[0], rng)
        space.validate(c.genome)
        toks = space.tokens(a)
        if not toks or not all(isinstance(t, str) for t in toks):
            _fail(what, "tokens must be a non-empty list of strings")
        g = space.graph(a)
        import networkx as nx

        if not isinstance(g, nx.DiGraph) or not all("op" in d for *_, d in g.edges(data=True)):
            _fail(what, "graph must be a networkx.DiGraph whose edges carry 'op'")
        s = space.to_string(a)
        if space.from_string(s) != a:
            _fail(what, "from_string(to_string(a)) != a")
    u = rng.random((n, space.num_dimensions))
    for row in u:
        space.validate(space.from_vector(row, rng).genome)
    bad = dict(archs[0].genome)
    bad["__not_a_dimension__"] = 1
    try:
        space.validate(bad)
    except InvalidGenomeError:
        pass
    else:
        _fail(what, "validate accepted an unknown dimension")
    keys = {}
    for a in archs:
        if keys.setdefault(a.key, a) != a:
            _fail(what, "distinct genomes share a key")


# --------------------------------------------------------------------------- encoders / predictors


def check_encoder(what: str, encoder, conf: dict) -> None:
    from scipy import sparse
    from sklearn.base import clone

    space = _space_for(conf)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(40)]
    encoder.set_space(space)
    if encoder.fit(archs) is not encoder:
        _fail(what, "fit must return self")
    X = encoder.transform(archs)
    if X.shape[0] != len(archs):
        _fail(what, f"transform returned {X.shape[0]} rows for {len(archs)} architectures")
    names = encoder.get_feature_names_out()
    if len(names) != X.shape[1]:
        _fail(what, f"{len(names)} feature names for {X.shape[1]} columns")
    X2 = encoder.transform(archs)
    dense = (lambda m: m.toarray() if sparse.issparse(m) else np.asarray(m))
    if not np.allclose(dense(X), dense(X2)):
        _fail(what, "transform is not deterministic")
    if hasattr(encoder, "get_params"):  # scikit-learn-style encoders must survive clone; the protocol does not require it
        clone(encoder)


def check_predictor(what: str, predictor, conf: dict) -> None:
    from sklearn.base import clone

    rng = np.random.default_rng(0)
    X = rng.random((120, 6))
    y = 3 * X[:, 0] + 2 * X[:, 1] ** 2 - X[:, 2] + 0.05 * rng.standard_normal(120)
    est = clone(predictor)
    if est.get_params() != predictor.get_params():
        _fail(what, "clone changes parameters")
    if est.fit(X[:80], y[:80]) is not est:
        _fail(what, "fit must return self")
    pred = np.asarray(est.predict(X[80:]))
    if pred.shape != (40,):
        _fail(what, f"predict returned shape {pred.shape}, expected (40,)")
    if not np.all(np.isfinite(pred)):
        _fail(what, "predict returned non-finite values")
    ss_res = float(np.sum((y[80:] - pred) ** 2))
    ss_tot = float(np.sum((y[80:] - y[80:].mean()) ** 2))
    if 1 - ss_res / ss_tot < conf.get("min_r2", 0.5):
        _fail(what, f"R^2 {1 - ss_res / ss_tot:.2f} on a smooth 3-feature function is below {conf.get('min_r2', 0.5)}")
    est.set_params(**est.get_params())


# --------------------------------------------------------------------------- samplers / optimizers


@attrs.define
class SyntheticEvaluator:
    """A cheap, deterministic objective over any space: a smooth function of the genome's
    unit-cube vector with its optimum at ``target`` (used by the conformance checks)."""

    target: float = 0.7
    needs_task = False

    def evaluate(self, arch, space, task, *, seed, stopper=None) -> Outcome:
        v = space.to_vector(arch)
        value = 100.0 * float(np.exp(-np.mean((v - self.target) ** 2) * 8))
        return Outcome(metrics={"valid_accuracy": value, "test_accuracy": value}, curve=[{"epoch": 1, "valid_accuracy": value}])


def synthetic_context(space: SearchSpace, *, budget: int = 30, seed: int = 0, sampler=None, encoder=None,
                      predictor=None, evaluator=None, task=None):
    """A SearchContext with the synthetic objective and the local executor (no files);
    ``sampler`` defaults to ``random``, ``task`` (for optimizers that train) to none."""
    from .context import SearchContext
    from .executors import LocalExecutor
    from . import create

    evaluator = evaluator or SyntheticEvaluator()
    config = {"seed": seed, "budget": budget, "device": "cpu", "metric": "valid_accuracy",
              "space": {"name": space.name}, "evaluator": {"name": "synthetic"}}
    ctx = SearchContext(config=config, space=space, evaluator=evaluator, executor=LocalExecutor(),
                        encoder=encoder, predictor=predictor, task=task,
                        sampler=sampler if sampler is not None else create("sampler", "random"))
    if encoder is not None:
        encoder.set_space(space)
    ctx.sampler.setup(ctx)
    return ctx


def check_sampler(what: str, sampler, conf: dict) -> None:
    space = _space_for(conf)
    ctx = synthetic_context(space, sampler=sampler, budget=60)
    archs = sampler.ask(8)
    if len(archs) != 8:
        _fail(what, f"ask(8) returned {len(archs)} architectures")
    for a in archs:
        space.validate(a.genome)
    sampler.tell(ctx.evaluate(archs))
    more = sampler.ask(4)
    for a in more:
        space.validate(a.genome)
    pickle.dumps(more)


def check_optimizer(what: str, optimizer, conf: dict) -> None:
    space = _space_for(conf)
    budget = conf.get("budget", 25)
    from . import create

    task = None
    if "task" in conf:  # optimizers that train a supernet (one-shot, differentiable) need data
        from .data import load_task

        task = load_task(conf["task"])
    ctx = synthetic_context(space, budget=budget, sampler=create("sampler", "random"),
                            encoder=create("encoder", "vector"), predictor=_default_predictor(conf), task=task)
    result = optimizer.run(ctx)
    if not isinstance(result, SearchResult):
        _fail(what, f"run returned {type(result).__name__}, not SearchResult")
    if ctx.used > budget:
        _fail(what, f"used {ctx.used} evaluations with a budget of {budget}")
    if result.best is not None:
        space.validate(result.best.genome)


def check_optimizer_rules(name: str, *, budget: int = 30, seed: int = 0, **params) -> dict:
    """The query rules every optimizer that searches by evaluating architectures keeps, on
    the tabular NAS-Bench-201 evaluator (needs ``$NASCORE_DATA/nb201/nb201.csv``):

    * a budget of N buys N distinct evaluations: the run ends with ``used == budget``
      (repeats are free, so nothing is left unused while new cells exist);
    * the reported best is the best *evaluated* architecture on the feedback metric.

    Optimizers whose conformance declares another space or a training ``task`` (one-shot
    and differentiable searches: they train a supernet and evaluate only their answer) are
    skipped.  Returns ``{"used", "best", "evaluated_best"}``."""
    import pytest

    from . import create
    from .plugins import get_registry

    comp = get_registry().get("optimizer", name)
    conf = _conformance(comp.factory)
    space_spec = conf.get("space", "nb201")
    if "task" in conf or (space_spec if isinstance(space_spec, str) else space_spec.get("name")) != "nb201":
        pytest.skip(f"optimizer {name!r} trains a supernet or searches another space; the query rules "
                    "apply to searches that evaluate architectures")
    require_data("nb201/nb201.csv")
    optimizer = create("optimizer", name, **{**conf.get("params", {}), **params})
    ctx = synthetic_context(create("search_space", "nb201"), budget=budget, seed=seed,
                            evaluator=create("evaluator", "tabular"), encoder=create("encoder", "onehot"),
                            predictor=_default_predictor(conf))
    result = optimizer.run(ctx)
    what = f"optimizer {name!r}"
    if ctx.used != budget:
        _fail(what, f"used {ctx.used} distinct evaluations of a budget of {budget}")
    best = ctx.best()
    # (reconstructed tail: the original working copy of this function was lost, see the lead's report)
    reported = ctx.known(result.best.key) if result.best is not None else None
    if best is None or reported is None:
        _fail(what, "reported no evaluated architecture as its best")
    if reported.metric(ctx.metric) != best.metric(ctx.metric):
        _fail(what, f"reported {reported.key} ({ctx.metric}={reported.metric(ctx.metric)}), not the best "
                    f"evaluated {best.key} ({best.metric(ctx.metric)})")
    return {"used": ctx.used, "best": result.best.key, "evaluated_best": best.key}


def _default_predictor(conf: dict):
    from . import create

    name = conf.get("predictor")
    return create("predictor", name) if name else None


# --------------------------------------------------------------------------- others


def check_executor(what: str, executor, conf: dict) -> None:
    try:
        fut = executor.submit(_square, 7)
        if fut.result(timeout=conf.get("timeout", 120)) != 49:
            _fail(what, "submit(f, 7) did not return f(7)")
        if executor.max_workers < 1:
            _fail(what, "max_workers must be >= 1")
    finally:
        executor.shutdown()


def _square(x):
    return x * x


def check_stopper(what: str, stopper, conf: dict) -> None:
    pickle.loads(pickle.dumps(stopper))
    curve = [{"epoch": i + 1, "valid_accuracy": 50.0 + 5 * i, "train_loss": 1.0 / (i + 1)} for i in range(3)]
    stopper.update([])
    out = stopper.should_stop(curve, 12)
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], (bool, np.bool_))):
        _fail(what, f"should_stop must return (bool, predicted), got {out!r}")


def check_compressor(what: str, compressor, conf: dict) -> None:
    """Compress a small trained network of a supported space on digits; cost must not rise."""
    if "space" not in conf:
        return  # a compressor that declares no space is checked by its own tests
    from .context import SearchContext
    from .data import load_task
    from .executors import LocalExecutor

    space = _space_for(conf)
    task = load_task(conf.get("task", {"dataset": "digits", "seed": 0}))
    arch = space.make(conf["arch"]) if "arch" in conf else space.sample(np.random.default_rng(0))
    model = space.build(arch, task)
    ctx = SearchContext(config={"seed": 0, "budget": 0, "device": "cpu", "metric": "valid_accuracy",
                                "space": {"name": space.name}, "evaluator": {"name": "train", "epochs": 1}},
                        space=space, evaluator=None, executor=LocalExecutor(), task=task)
    res = compressor.compress(arch, model, task, ctx)
    for cost in ("params", "flops"):
        b, a = res.before.get(cost), res.after.get(cost)
        if b is not None and a is not None and a > b:
            _fail(what, f"{cost} rose from {b} to {a}")


def check_dataset(what: str, dataset, conf: dict) -> None:
    from .errors import DatasetNotFoundError

    try:
        task = dataset.load()
    except DatasetNotFoundError as exc:
        import pytest

        pytest.skip(f"{what}: its files are not here ({exc})")
    for split in (task.train, task.valid, task.test):
        if split.X.shape[1:] != tuple(task.input_shape):
            _fail(what, f"split shape {tuple(split.X.shape[1:])} != input_shape {task.input_shape}")
        if len(split.X) != len(split.y):
            _fail(what, "X and y lengths differ")
        if len(split.y) and (int(split.y.max()) >= task.num_classes or int(split.y.min()) < 0):
            _fail(what, "labels outside 0..num_classes-1")


_CHECKS = {
    "search_space": lambda what, obj, conf: check_search_space(what, obj, conf),
    "encoder": check_encoder,
    "predictor": check_predictor,
    "sampler": check_sampler,
    "optimizer": check_optimizer,
    "executor": check_executor,
    "stopper": check_stopper,
    "compressor": check_compressor,
    "dataset": check_dataset,
}

__all__ = ["ConformanceError", "check_component", "conformance_cases", "synthetic_context", "SyntheticEvaluator",
           "check_search_space", "check_encoder", "check_predictor", "check_sampler", "check_optimizer",
           "check_optimizer_rules", "check_executor", "check_stopper", "check_compressor", "check_dataset", "Evaluation", "OK"]


def cuda_test_device():
    """The device a test marked ``cuda`` runs on: CUDA when present; the CPU when
    ``NASCORE_CUDA_TESTS_ON_CPU=1`` (to check the CUDA tests themselves on a machine
    without a GPU); otherwise the test is skipped."""
    import os

    import pytest
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda")
    if os.environ.get("NASCORE_CUDA_TESTS_ON_CPU") == "1":
        return torch.device("cpu")
    pytest.skip("no CUDA device")
