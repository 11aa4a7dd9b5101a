"""nascore: a plugin framework for neural architecture search.

Public API: :func:`create` builds any registered component, :func:`components` lists
them, :func:`run` runs a pipeline from a TOML path or a dict.
"""

from __future__ import annotations

from .arch import Architecture, Choice, Float, Int, SearchSpace
from .errors import NascoreError
from .hookspecs import hookimpl
from .params import lazy, param

__version__ = "0.1.0"

__all__ = [
    "Architecture", "Choice", "Float", "Int", "SearchSpace", "NascoreError",
    "hookimpl", "lazy", "param", "create", "components", "run", "run_study", "Study", "__version__",
]


def create(kind: str, name: str, **params):
    """Build a registered component: ``create("optimizer", "regularized-evolution", population=20)``."""
    from .plugins import get_registry

    return get_registry().create(kind, name, **params)


def components(kind: str | None = None):
    """Registered components (of one kind, or all) with the plugin that supplied each."""
    from .plugins import get_registry

    return get_registry().components(kind)


def run(config, out=None, resume: bool = False, **kwargs):
    """Run a pipeline from a TOML path or a dict; returns the result (as in ``result.json``)."""
    from .driver import run_pipeline

    return run_pipeline(config, out=out, resume=resume, **kwargs)


def run_study(arms, seeds, out, **kwargs):
    """Run (or resume) a paired multi-seed study; returns ``study.json``'s content
    (see :mod:`nascore.study`)."""
    from .study import run_study as _run_study

    return _run_study(arms, seeds, out, **kwargs)


def __getattr__(name: str):
    if name == "Study":
        from .study import Study

        return Study
    raise AttributeError(f"module 'nascore' has no attribute {name!r}")
