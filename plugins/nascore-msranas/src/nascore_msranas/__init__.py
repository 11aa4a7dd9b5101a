"""nascore-msranas: MS-RANAS (Cioflan & Timofte), multi-scale resource-aware NAS.

Registers the ``msranas`` search space (DARTS cells in the multi-scale, multi-exit
network), the ``msranas`` optimizer (differentiable search, final training, anytime
evaluation) and the ``nascore msranas`` commands.  Component modules import torch, so
the factories import them on first use.
"""

from __future__ import annotations

import nascore


def _component_class(module: str, name: str):
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


class _Lazy:
    """A factory that imports its component class on first use (``nascore --help`` stays
    fast); ``component_class`` exposes the attrs class for parameter validation."""

    def __init__(self, module: str, name: str, doc: str):
        self._module, self._name, self.__doc__ = module, name, doc

    @property
    def component_class(self):
        return _component_class(self._module, self._name)

    def __call__(self, **params):
        return self.component_class(**params)


@nascore.hookimpl
def register_search_spaces(register):
    register("msranas", _Lazy("space", "MultiScaleSpace", "DARTS cells in the MS-RANAS multi-scale network"),
             description="DARTS cells built into the MS-RANAS multi-scale network with early exits (darts genome)")


@nascore.hookimpl
def register_optimizers(register):
    register("msranas", _Lazy("optimizer", "MSRANAS", "MS-RANAS differentiable multi-scale search"),
             description="MS-RANAS: DARTS search on a multi-scale early-exit supernet, final multi-exit "
                         "training, anytime evaluation")


@nascore.hookimpl
def register_commands(cli):
    from .cli import make_group

    cli.add_command(make_group())
