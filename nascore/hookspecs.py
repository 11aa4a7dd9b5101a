"""Hook specifications of the ``nascore`` plugin system.

Every registration hook receives a ``register`` callback.  Calling
``register(name, factory, description="")`` adds one component; the core, not the
plugin, validates it, refuses a name another plugin already took (naming both), and
records which plugin supplied it.  A factory is an attrs class (or a callable returning
an instance of one) whose attrs fields are the component's parameters.  Import heavy
modules (torch, scikit-learn estimators) inside the factory, not at registration time,
so that ``nascore --help`` stays fast.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("nascore")
hookimpl = pluggy.HookimplMarker("nascore")


@hookspec
def register_search_spaces(register):
    """Register search spaces: factories of :class:`nascore.arch.SearchSpace` subclasses.

    A space declares its dimensions and provides the ``tokens``, ``graph``, ``build`` and
    ``cost`` views of an architecture.
    """


@hookspec
def register_encoders(register):
    """Register encoders: scikit-learn transformers from architectures to feature matrices.

    ``fit(archs)`` returns self, ``transform(archs)`` returns a dense array or a SciPy
    sparse matrix with one row per architecture, ``get_feature_names_out()`` names the
    columns.
    """


@hookspec
def register_predictors(register):
    """Register predictors: scikit-learn regressors of an architecture's metric.

    ``fit(X, y, curves=None)`` returns self and ``predict(X, curves=None)`` returns one
    value per row; ``curves`` are observed learning-curve prefixes for predictors that
    use them.
    """


@hookspec
def register_samplers(register):
    """Register samplers: ask/tell sources of architectures.

    ``ask(n)`` returns ``n`` architectures and ``tell(evaluations)`` receives their
    results in the order asked.  A sampler is bound to a space and a random generator
    with ``setup(space, rng)`` before the first ``ask``.
    """


@hookspec
def register_optimizers(register):
    """Register optimizers (search strategies).

    ``run(ctx)`` searches with the :class:`nascore.context.SearchContext` it is given
    (space, sampler, encoder, predictor, ``evaluate``, budget, rng, progress, log) and
    returns a :class:`nascore.results.SearchResult`.
    """


@hookspec
def register_compressors(register):
    """Register compressors.

    ``compress(arch, model, task, ctx)`` returns a :class:`nascore.results.Compressed`
    whose cost (params, FLOPs) never exceeds the input's.
    """


@hookspec
def register_executors(register):
    """Register executors: ``submit(fn, *args)`` returns a ``concurrent.futures.Future``;
    ``shutdown()`` releases the workers."""


@hookspec
def register_datasets(register):
    """Register datasets: factories whose ``load()`` returns a :class:`nascore.data.Task`."""


@hookspec
def register_evaluators(register):
    """Register evaluators: ``evaluate(arch, space, task, seed=..., stopper=None)``
    returns an :class:`nascore.results.Outcome` (status, metrics, curve)."""


@hookspec
def register_stoppers(register):
    """Register early-termination rules for the ``train`` evaluator.

    ``update(evaluations)`` runs in the driver after each batch;
    ``should_stop(curve, epochs)`` runs inside training after each epoch and returns
    ``(stop, predicted_final_metric_or_None)``.
    """


@hookspec
def register_operations(register):
    """Register cell operations: torch module builders any cell space can use by name.

    ``register(name, factory, description="", pooling=False)`` adds one operation.
    ``factory(C_in, C_out, stride, affine)`` returns an ``nn.Module`` mapping
    ``N x C_in x H x W`` to ``N x C_out x ceil(H/stride) x ceil(W/stride)``; give it as a
    callable or as ``"package.module:function"`` so that torch is imported only when an
    operation is built.  ``pooling=True`` marks a parameter-free pooling op (supernets follow
    it with a non-affine batch norm).  Names are unique across plugins: a name another
    plugin registered is refused naming both.  The ``darts`` space's ``ops`` and every cell,
    supernet and cost view resolve op names through this registry, in any process.
    """


@hookspec
def register_commands(cli):
    """Add click commands or groups to the ``nascore`` command line group ``cli``."""
