"""The registry of cell operations, filled by the ``register_operations`` hook.

An operation is a torch module builder ``factory(C_in, C_out, stride, affine) -> nn.Module``
(the contract is in :mod:`nascore.nn.ops`).  Every operation, the built-in DARTS and
NAS-Bench-201 ones included, is registered by a plugin when plugins load, so any process
can build any registered operation whatever ran before it.  The registry imports no torch:
a factory may be given as ``"package.module:function"`` and is imported when first built.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator

import attrs

from .errors import DuplicateComponentError, PluginError, UnknownComponentError, did_you_mean


@attrs.define(eq=False)
class Operation:
    """One registered operation: its name, the plugin that registered it and its factory."""

    name: str
    plugin: str
    factory: Callable | str
    description: str = ""
    #: a parameter-free pooling op: supernets follow it with a non-affine batch norm (DARTS search code)
    pooling: bool = False
    _resolved: Callable | None = attrs.field(default=None, repr=False)

    def resolve(self) -> Callable:
        """The factory, importing ``"package.module:function"`` on first use."""
        if self._resolved is None:
            if callable(self.factory):
                self._resolved = self.factory
            else:
                module, _, attr = self.factory.partition(":")
                try:
                    self._resolved = getattr(importlib.import_module(module), attr)
                except (ImportError, AttributeError) as exc:
                    raise PluginError(f"operation {self.name!r} of plugin {self.plugin!r}: cannot import "
                                      f"{self.factory!r} ({exc})") from exc
        return self._resolved

    def build(self, C_in: int, C_out: int, stride: int = 1, affine: bool = True):
        """The torch module mapping ``C_in`` to ``C_out`` channels with ``stride``."""
        return self.resolve()(C_in, C_out, stride, affine)


class OperationRegistry:
    """Operations by name (unique across plugins), in registration order."""

    def __init__(self):
        self._ops: dict[str, Operation] = {}

    def add(self, name: str, factory, *, plugin: str, description: str = "", pooling: bool = False) -> Operation:
        if not isinstance(name, str) or not name or ":" in name or name != name.strip() or " " in name:
            raise PluginError(f"plugin {plugin!r} registered an operation with an invalid name {name!r}")
        if name == "null":
            raise PluginError(f"plugin {plugin!r}: the operation name 'null' is reserved (it reads as 'none')")
        if isinstance(factory, str):
            if ":" not in factory:
                raise PluginError(f"plugin {plugin!r}: operation {name!r} factory must be callable or "
                                  f"'package.module:function', got {factory!r}")
        elif not callable(factory):
            raise PluginError(f"plugin {plugin!r}: operation {name!r} factory is not callable")
        if not isinstance(pooling, bool):
            raise PluginError(f"plugin {plugin!r}: operation {name!r} pooling must be True or False, got {pooling!r}")
        if name in self._ops:
            other = self._ops[name].plugin
            raise DuplicateComponentError(
                f"operation {name!r} is registered by both plugin {other!r} and plugin {plugin!r}; "
                "uninstall one or disable it with NASCORE_LOAD_PLUGINS"
            )
        if not description and callable(factory):
            description = (factory.__doc__ or "").strip().split("\n")[0]
        op = Operation(name, plugin, factory, description, pooling)
        self._ops[name] = op
        return op

    def remove_plugin(self, plugin: str) -> None:
        for name in [n for n, op in self._ops.items() if op.plugin == plugin]:
            del self._ops[name]

    def get(self, name) -> Operation:
        """The operation ``name`` (``None``/``"null"`` read as ``"none"``), else UnknownComponentError."""
        key = "none" if name in (None, "null") else name
        op = self._ops.get(key) if isinstance(key, str) else None
        if op is None:
            raise UnknownComponentError(
                f"unknown operation {name!r};{did_you_mean(str(name), self._ops)} "
                f"registered: {', '.join(self._ops) or '(none)'}"
            )
        return op

    def names(self) -> tuple[str, ...]:
        return tuple(self._ops)

    def by_plugin(self, plugin: str) -> list[str]:
        return [n for n, op in self._ops.items() if op.plugin == plugin]

    def __contains__(self, name) -> bool:
        return name in self._ops

    def __iter__(self) -> Iterator[Operation]:
        return iter(list(self._ops.values()))

    def __len__(self) -> int:
        return len(self._ops)
