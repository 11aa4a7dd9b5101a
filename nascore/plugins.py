"""The plugin manager: default (built-in) plugins plus entry points in group ``nascore``.

Loading is isolated per distribution: a plugin that fails to import or to register is
reported (``nascore plugins``, a warning on stderr) and the others keep working, unless
``NASCORE_STRICT_PLUGINS=1``.  ``NASCORE_LOAD_PLUGINS=a,b`` loads only those
distributions (empty: none but the built-ins); ``NASCORE_TRACE_PLUGINS=1`` traces hook
calls on stderr.

Every hook is called through pluggy (``pm.hook``).  A plugin's registration hooks are called
when it loads, through ``pm.subset_hook_caller`` restricted to that plugin, with a
``register`` callback bound to its name: pluggy passes no caller identity, and calling one
plugin at a time both attributes every component to the plugin that registered it and
confines a failure to that plugin.  A ``wrapper=True`` implementation therefore wraps its
own plugin's registration.  ``pm.check_pending()`` runs as each plugin loads: an
implementation whose name matches no hook specification fails the plugin with an error
naming the closest specification.
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
from .errors import PluginError, did_you_mean
from .operations import OperationRegistry
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
    "nascore.builtin.operations",
)

#: the hook that fills the operation registry (cell ops), beside the component kinds of KINDS
OPERATIONS_HOOK = "register_operations"


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
    #: what it registered: ``(kind, name)`` pairs, kind ``"operation"`` for cell ops
    registered: tuple[tuple[str, str], ...] = ()


class _State:
    def __init__(self):
        self.pm: pluggy.PluginManager | None = None
        self.registry: Registry | None = None
        self.operations: OperationRegistry | None = None
        self.registered: dict[str, list[tuple[str, str]]] = {}
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


def _label(name: str) -> str:
    """The plugin name components record: built-ins share one label, ``nascore``."""
    return "nascore" if name.startswith("nascore.") else name


def _spec_names(pm: pluggy.PluginManager) -> list[str]:
    return sorted(n for n, caller in vars(pm.hook).items() if not n.startswith("_") and caller.has_spec())


def _check_pending(pm: pluggy.PluginManager) -> None:
    """``pm.check_pending()``; an unknown hook becomes a PluginError naming the closest spec."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        plugin = exc.plugin
        specs = _spec_names(pm)
        unknown = sorted(
            caller.name for caller in pm.get_hookcallers(plugin) or []
            if not caller.has_spec()
            and any(i.plugin is plugin and not i.optionalhook for i in caller.get_hookimpls())
        )
        parts = [f"unknown hook {name!r};" + (did_you_mean(name, specs) or f" hooks: {', '.join(specs)}")
                 for name in unknown]
        raise PluginError(f"plugin {pm.get_name(plugin)!r} implements " + "; ".join(parts)) from exc


def _call_plugin_hook(pm: pluggy.PluginManager, plugin_obj, hook_name: str, **kwargs):
    """Call ``hook_name`` through pluggy for the implementations of ``plugin_obj`` only."""
    others = [p for p in pm.get_plugins() if p is not plugin_obj]
    if _env_flag("NASCORE_TRACE_PLUGINS"):
        print(f"nascore trace: {hook_name} -> {pm.get_name(plugin_obj)}", file=sys.stderr)
    return pm.subset_hook_caller(hook_name, remove_plugins=others)(**kwargs)


def _register_components(pm: pluggy.PluginManager, plugin_obj) -> None:
    """Call every registration hook of one plugin with a callback tagged with its name."""
    name = pm.get_name(plugin_obj)
    label = _label(name)
    registry, operations = _state.registry, _state.operations
    record = _state.registered.setdefault(name, [])
    implemented = {caller.name for caller in pm.get_hookcallers(plugin_obj) or []}
    for kind, hook_name in KINDS.items():
        if hook_name not in implemented:
            continue

        def register(cname, factory, description="", _kind=kind):
            registry.add(_kind, cname, factory, plugin=label, description=description)
            record.append((_kind, cname))

        _call_plugin_hook(pm, plugin_obj, hook_name, register=register)
    if OPERATIONS_HOOK in implemented:

        def register_operation(oname, factory, description="", pooling=False):
            operations.add(oname, factory, plugin=label, description=description, pooling=pooling)
            record.append(("operation", oname))

        _call_plugin_hook(pm, plugin_obj, OPERATIONS_HOOK, register=register_operation)


def _forget(pm: pluggy.PluginManager, plugin_obj, name: str) -> None:
    """Undo a plugin's registration: unregister it and drop what it registered."""
    if plugin_obj is not None and pm.is_registered(plugin_obj):
        pm.unregister(plugin_obj)
    _state.registry.remove_plugin(name)
    _state.operations.remove_plugin(name)
    _state.registered.pop(name, None)


def _load() -> None:
    pm = _make_pm()
    _state.registry = Registry()
    _state.operations = OperationRegistry()
    _state.registered = {}
    _state.failures = []
    _state.dists = {}
    for modname in DEFAULT_PLUGINS:
        module = importlib.import_module(modname)
        plugin_name = "nascore." + modname.rsplit(".", 1)[-1]
        pm.register(module, name=plugin_name)
        _check_pending(pm)
        _register_components(pm, module)
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
            _check_pending(pm)
            _register_components(pm, plugin_obj)
            _state.dists[ep.name] = (dist, ep.dist.version if ep.dist is not None else None)
        except Exception as exc:  # noqa: BLE001 - isolation is the point
            _forget(pm, plugin_obj, ep.name)
            _fail(ep.name, dist, exc)
    _state.pm = pm


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


def get_operations() -> OperationRegistry:
    """The cell operations every loaded plugin registered (``register_operations``)."""
    load_plugins()
    return _state.operations


def add_commands(cli) -> None:
    """Call ``register_commands(cli)`` through pluggy, one plugin at a time, so that a
    plugin whose commands fail is reported and the command line keeps working."""
    load_plugins()
    pm = _state.pm
    for name, plugin_obj in sorted(pm.list_name_plugin(), key=lambda t: t[0]):
        if "register_commands" not in {c.name for c in pm.get_hookcallers(plugin_obj) or []}:
            continue
        try:
            _call_plugin_hook(pm, plugin_obj, "register_commands", cli=cli)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not take the CLI down
            if not any(f.name == name for f in _state.failures):
                _fail(name, _state.dists.get(name, (None, None))[0], exc)


def load_plugins(*, reload: bool = False) -> None:
    """Load the built-in and installed plugins once (again with ``reload=True``)."""
    with _state.lock:
        if _state.pm is None or reload:
            try:
                _load()
            except BaseException:
                _state.pm = None  # a half-filled registry must not be served
                raise


def register_plugin(plugin_obj, name: str) -> None:
    """Register an in-process plugin object (tests, notebooks) and its components."""
    load_plugins()
    with _state.lock:
        _state.pm.register(plugin_obj, name=name)
        try:
            _check_pending(_state.pm)
            _register_components(_state.pm, plugin_obj)
        except Exception:
            _forget(_state.pm, plugin_obj, name)
            raise
        _state.dists[name] = (None, None)


def unregister_plugin(name: str) -> None:
    load_plugins()
    with _state.lock:
        _forget(_state.pm, _state.pm.get_plugin(name), name)
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
        out.append(PluginInfo(name, dist, version, hooks, builtin=name.startswith("nascore."),
                              registered=tuple(_state.registered.get(name, ()))))
    return out
