"""Components by kind and name: which plugin supplied each, its factory and parameters."""

from __future__ import annotations

from typing import Any, Callable

import attrs

from .errors import DuplicateComponentError, PluginError, UnknownComponentError, did_you_mean
from .params import build_component, describe_params

#: component kind -> the hook that registers it
KINDS: dict[str, str] = {
    "search_space": "register_search_spaces",
    "encoder": "register_encoders",
    "predictor": "register_predictors",
    "sampler": "register_samplers",
    "optimizer": "register_optimizers",
    "compressor": "register_compressors",
    "executor": "register_executors",
    "dataset": "register_datasets",
    "evaluator": "register_evaluators",
    "stopper": "register_stoppers",
}

_ALIASES = {k + "s": k for k in KINDS} | {"space": "search_space", "spaces": "search_space",
                                           "search-space": "search_space", "search_spaces": "search_space"}


def normalize_kind(kind: str) -> str:
    k = kind.replace("-", "_")
    k = _ALIASES.get(k, _ALIASES.get(kind, k))
    if k not in KINDS:
        raise UnknownComponentError(
            f"unknown component kind {kind!r};{did_you_mean(kind, KINDS)} valid: {', '.join(KINDS)}"
        )
    return k


@attrs.frozen
class Component:
    kind: str
    name: str
    plugin: str
    factory: Callable[..., Any]
    description: str = ""

    def params(self):
        return describe_params(self.factory)


class Registry:
    """All registered components.  Names are unique per kind; ``plugin:name`` also works."""

    def __init__(self):
        self._by_kind: dict[str, dict[str, Component]] = {k: {} for k in KINDS}

    def add(self, kind: str, name: str, factory, *, plugin: str, description: str = "") -> Component:
        if not isinstance(name, str) or not name or ":" in name or name != name.strip():
            raise PluginError(f"plugin {plugin!r} registered a {kind} with an invalid name {name!r}")
        if not callable(factory):
            raise PluginError(f"plugin {plugin!r} registered {kind} {name!r} with a factory that is not callable")
        table = self._by_kind[kind]
        if name in table:
            other = table[name].plugin
            raise DuplicateComponentError(
                f"{kind} {name!r} is registered by both plugin {other!r} and plugin {plugin!r}; "
                "uninstall one or disable it with NASCORE_LOAD_PLUGINS"
            )
        comp = Component(kind, name, plugin, factory, description or (factory.__doc__ or "").strip().split("\n")[0])
        table[name] = comp
        return comp

    def remove_plugin(self, plugin: str) -> None:
        for table in self._by_kind.values():
            for name in [n for n, c in table.items() if c.plugin == plugin]:
                del table[name]

    def get(self, kind: str, name: str) -> Component:
        kind = normalize_kind(kind)
        table = self._by_kind[kind]
        if not isinstance(name, str):
            raise UnknownComponentError(f"{kind} name must be a string, got {name!r}")
        if ":" in name:
            plugin, _, short = name.partition(":")
            comp = table.get(short)
            if comp is not None and comp.plugin == plugin:
                return comp
        elif name in table:
            return table[name]
        names = sorted(table)
        label = kind.replace("_", " ")
        raise UnknownComponentError(
            f"unknown {label} {name!r};{did_you_mean(name.split(':')[-1], names)} "
            f"installed: {', '.join(names) or '(none)'}"
        )

    def names(self, kind: str) -> list[str]:
        return sorted(self._by_kind[normalize_kind(kind)])

    def components(self, kind: str | None = None) -> list[Component]:
        kinds = [normalize_kind(kind)] if kind else list(KINDS)
        return [c for k in kinds for _, c in sorted(self._by_kind[k].items())]

    def create(self, kind: str, name: str, **params):
        """Build component ``name`` with ``params``; the product is checked against its
        kind's protocol (:mod:`nascore.protocols`), so a plugin's incomplete component
        fails here, naming the members it lacks."""
        from .protocols import check_protocol

        comp = self.get(kind, name)
        what = f"{comp.kind.replace('_', ' ')} {comp.name!r}"
        obj = build_component(comp.factory, params, what=what)
        check_protocol(obj, comp.kind, f"{what} of plugin {comp.plugin!r}")
        return obj
