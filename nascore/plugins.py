"""The plugin manager: default (built-in) plugins plus entry points in group ``nascore``.

Loading is isolated per distribution: a plugin that fails to import or to register is
reported (``nascore plugins``, a warning on stderr) and the others keep working, unless
``NASCORE_STRICT_PLUGINS=1``.  ``NASCORE_LOAD_PLUGINS=a,b`` loads only those
distributions (empty: none but the built-ins); ``NASCORE_TRACE_PLUGINS=1`` traces hook
calls on stderr.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
import threading
import traceback
import warnings

import attrs
import pluggy

from . import hookspecs
from .errors import PluginError
from .registry import KINDS, Registry

GROUP = "nascore"

#: modules registered as plugins inside the core, like any external plugin
DEFAULT_PLUGINS = (
    "nascore.builtin.spaces",
    "nascore.builtin.samplers",
    "nascore.builtin.optimizers",
    "nascore.builtin.encoders",
    "nascore.builtin.predictors",
    "nascore.builtin.executors",
    "nascore.builtin.datasets",
    "nascore.builtin.evaluators",
)


@attrs.frozen
class PluginFailure:
    name: str
    distribution: str | None
    error: str
    traceback: str


@attrs.frozen
class PluginInfo:
    name: str
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...]
    builtin: bool


class _State:
    def __init__(self):
        self.pm: pluggy.PluginManager | None = None
        self.registry: Registry | None = None
        self.failures: list[PluginFailure] = []
        self.dists: dict[str, tuple[str | None, str | None]] = {}
        self.lock = threading.RLock()


_state = _State()


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _selected() -> set[str] | None:
    raw = os.environ.get("NASCORE_LOAD_PLUGINS")
    if raw is None:
        return None
    return {p.strip() for p in raw.split(",") if p.strip()}


def _fail(name: str, dist: str | None, exc: BaseException) -> None:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    failure = PluginFailure(name, dist, f"{type(exc).__name__}: {exc}", tb)
    _state.failures.append(failure)
    if _env_flag("NASCORE_STRICT_PLUGINS"):
        raise PluginError(f"plugin {name!r} failed to load: {failure.error}") from exc
    warnings.warn(f"nascore: plugin {name!r} failed to load and is disabled: {failure.error}", stacklevel=3)
    print(f"nascore: warning: plugin {name!r} failed to load and is disabled: {failure.error}", file=sys.stderr)


def _make_pm() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    if _env_flag("NASCORE_TRACE_PLUGINS"):
        pm.trace.root.setwriter(lambda msg: print(msg, end="", file=sys.stderr))
        pm.enable_tracing()
    return pm


def _register_components(pm: pluggy.PluginManager, registry: Registry, plugin_obj) -> None:
    """Call every registration hook of one plugin with a callback tagged with its name."""
    name = pm.get_name(plugin_obj)
    label = "nascore" if name.startswith("nascore.") else name  # built-ins share one label
    trace = _env_flag("NASCORE_TRACE_PLUGINS")
    for kind, hook_name in KINDS.items():
        caller = getattr(pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            if impl.plugin is not plugin_obj:
                continue

            def register(cname, factory, description="", _kind=kind):
                registry.add(_kind, cname, factory, plugin=label, description=description)

            if trace:
                print(f"nascore trace: {hook_name} -> {name}", file=sys.stderr)
            impl.function(register=register)


def _load() -> None:
    pm = _make_pm()
    registry = Registry()
    _state.failures = []
    _state.dists = {}
    for modname in DEFAULT_PLUGINS:
        module = importlib.import_module(modname)
        plugin_name = "nascore." + modname.rsplit(".", 1)[-1]
        pm.register(module, name=plugin_name)
        _register_components(pm, registry, module)
        _state.dists[plugin_name] = ("nascore", _version("nascore"))
    selected = _selected()
    for ep in sorted(importlib.metadata.entry_points(group=GROUP), key=lambda e: e.name):
        dist = ep.dist.name if ep.dist is not None else None
        if selected is not None and ep.name not in selected and (dist or "") not in selected:
            continue
        if pm.has_plugin(ep.name):
            continue
        plugin_obj = None
        try:
            plugin_obj = ep.load()
            pm.register(plugin_obj, name=ep.name)
            _register_components(pm, registry, plugin_obj)
            _state.dists[ep.name] = (dist, ep.dist.version if ep.dist is not None else None)
        except Exception as exc:  # noqa: BLE001 - isolation is the point
            if plugin_obj is not None and pm.is_registered(plugin_obj):
                pm.unregister(plugin_obj)
            registry.remove_plugin(ep.name)
            _fail(ep.name, dist, exc)
    _state.pm = pm
    _state.registry = registry


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def get_plugin_manager() -> pluggy.PluginManager:
    load_plugins()
    return _state.pm


def get_registry() -> Registry:
    load_plugins()
    return _state.registry


def load_plugins(*, reload: bool = False) -> None:
    """Load the built-in and installed plugins once (again with ``reload=True``)."""
    with _state.lock:
        if _state.pm is None or reload:
            _load()


def register_plugin(plugin_obj, name: str) -> None:
    """Register an in-process plugin object (tests, notebooks) and its components."""
    load_plugins()
    with _state.lock:
        _state.pm.register(plugin_obj, name=name)
        try:
            _register_components(_state.pm, _state.registry, plugin_obj)
        except Exception:
            _state.registry.remove_plugin(name)
            _state.pm.unregister(plugin_obj)
            raise
        _state.dists[name] = (None, None)


def unregister_plugin(name: str) -> None:
    load_plugins()
    with _state.lock:
        obj = _state.pm.get_plugin(name)
        if obj is not None:
            _state.pm.unregister(obj)
        _state.registry.remove_plugin(name)
        _state.dists.pop(name, None)


def failures() -> list[PluginFailure]:
    load_plugins()
    return list(_state.failures)


def plugin_infos() -> list[PluginInfo]:
    """Loaded plugins with distribution, version and the hooks they implement."""
    load_plugins()
    pm = _state.pm
    out = []
    for name, obj in sorted(pm.list_name_plugin(), key=lambda t: t[0]):
        hooks = tuple(sorted(h.name for h in pm.get_hookcallers(obj) or []))
        dist, version = _state.dists.get(name, (None, None))
        out.append(PluginInfo(name, dist, version, hooks, builtin=name.startswith("nascore.")))
    return out
