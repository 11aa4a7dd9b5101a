"""Component parameters as attrs fields.

``param(default, help)`` declares one parameter; the attrs fields of a component class
are its config schema.  :func:`build_component` validates a mapping of user values
against that schema: unknown keys are refused with the list of valid ones, values are
coerced to the annotated type (TOML gives ints where floats are meant), and the class's
own validators run.  :func:`describe_params` lists the schema for ``nascore describe``.
"""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any, Literal

import attrs

from .errors import ConfigError, did_you_mean

_MISSING = attrs.NOTHING

#: how "no value" is written in TOML (which has no null): ``grad_clip = "none"``.  Accepted
#: by every parameter that may be None, and what ``config.toml`` holds for one that is.
NONE = "none"


def param(default=_MISSING, *, help: str, validator=None, converter=None, factory=None):
    """An attrs field that is a component parameter with a one-line ``help``."""
    kwargs: dict[str, Any] = {"metadata": {"help": help}, "kw_only": True}
    if factory is not None:
        kwargs["factory"] = factory
    elif default is not _MISSING:
        kwargs["default"] = default
    if validator is not None:
        kwargs["validator"] = validator
    if converter is not None:
        kwargs["converter"] = converter
    return attrs.field(**kwargs)


def in_range(low=None, high=None, *, low_open=False, high_open=False):
    """attrs validator: ``low <= value <= high`` (bounds optional, open with the flags)."""

    def check(inst, attribute, value):
        if value is None:
            return
        bad = (
            (low is not None and (value <= low if low_open else value < low))
            or (high is not None and (value >= high if high_open else value > high))
        )
        if bad:
            lo = "(" if low_open else "["
            hi = ")" if high_open else "]"
            raise ValueError(
                f"{attribute.name} must be in {lo}{low if low is not None else '-inf'}, "
                f"{high if high is not None else 'inf'}{hi}, got {value!r}"
            )

    return check


def one_of(*options):
    """attrs validator: the value is one of ``options``."""

    def check(inst, attribute, value):
        if value not in options:
            raise ValueError(
                f"{attribute.name} must be one of {', '.join(map(repr, options))}, got {value!r}"
            )

    return check


class _FitTime:
    """An attrs validator that does nothing when the instance is built or a field is set,
    and runs in :func:`validate_params` (see :func:`fit_time_validators`)."""

    def __init__(self, check):
        self.check = check

    def __call__(self, inst, attribute, value):
        pass


def fit_time_validators(cls, fields):
    """attrs ``field_transformer`` for scikit-learn estimators: the constructor and
    ``set_params`` only store parameters (scikit-learn's rule, which
    ``check_estimator`` enforces), so each field's validator is deferred to
    :func:`validate_params`, which ``fit`` calls and :func:`build_component` calls
    right after building the component (a bad config value is still refused up front)."""
    return [f.evolve(validator=_FitTime(f.validator)) if f.validator is not None else f for f in fields]


def validate_params(component, what: str | None = None) -> None:
    """Run the deferred (:func:`fit_time_validators`) validators of ``component``;
    raises :class:`~nascore.errors.ConfigError` naming ``what`` (default: the class)."""
    if not attrs.has(type(component)):
        return
    for f in attrs.fields(type(component)):
        if isinstance(f.validator, _FitTime):
            try:
                f.validator.check(component, f, getattr(component, f.name))
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"{what or type(component).__name__}: {exc}") from None


class lazy:
    """A factory that imports ``"package.module:Class"`` only when first used, so
    registering a component costs nothing (``nascore --help`` stays fast)."""

    def __init__(self, target: str, doc: str = ""):
        if ":" not in target:
            raise ValueError(f"lazy target must look like 'package.module:Class', got {target!r}")
        self.target = target
        self.__doc__ = doc or target
        self._cls = None

    @property
    def component_class(self):
        if self._cls is None:
            import importlib

            module, _, attr = self.target.partition(":")
            self._cls = getattr(importlib.import_module(module), attr)
        return self._cls

    def __call__(self, **params):
        return self.component_class(**params)

    def __repr__(self) -> str:
        return f"lazy({self.target!r})"


def component_class(factory):
    """The attrs class behind a factory (a class, or a callable annotated to return one)."""
    if inspect.isclass(factory) and attrs.has(factory):
        return factory
    target = getattr(factory, "component_class", None)
    if target is not None and attrs.has(target):
        return target
    return None


@attrs.frozen
class ParamInfo:
    name: str
    type: str
    default: Any
    help: str
    required: bool


def _type_name(tp) -> str:
    if tp is None:
        return "any"
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _fields(cls):
    try:
        attrs.resolve_types(cls)
    except Exception:  # unresolved forward references: fall back to raw annotations
        pass
    return [f for f in attrs.fields(cls) if f.init and not f.name.startswith("_")]


def describe_params(factory) -> list[ParamInfo]:
    cls = component_class(factory)
    if cls is None:
        return []
    out = []
    for f in _fields(cls):
        if isinstance(f.default, attrs.Factory):
            default = f.default.factory() if not f.default.takes_self else None
        else:
            default = None if f.default is _MISSING else f.default
        out.append(
            ParamInfo(
                name=f.name,
                type=_type_name(f.type),
                default=default,
                help=f.metadata.get("help", ""),
                required=f.default is _MISSING,
            )
        )
    return out


def _coerce(value, tp, where: str):
    """Coerce a TOML/JSON value to the annotated type ``tp`` or raise ConfigError."""
    if tp is None or tp is Any:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and (value is None or value == NONE):
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where} must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin in (list, tuple, typing.Sequence) or tp in (list, tuple):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        inner = args[0] if args and (origin is not tuple or len(args) == 2 and args[1] is Ellipsis) else None
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(value):
                raise ConfigError(f"{where} must have {len(args)} items, got {len(value)}")
            return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        items = [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    return value


def _is_none(value) -> bool:
    return value is None or value == NONE


def build_component(factory, params: dict, *, what: str):
    """Instantiate ``factory`` with validated ``params``; ``what`` names it in errors
    (e.g. "optimizer 'ees'")."""
    params = dict(params or {})
    cls = component_class(factory)
    if cls is None:
        try:
            return factory(**params)
        except TypeError as exc:
            raise ConfigError(f"{what}: {exc}") from None
    fields = {f.name: f for f in _fields(cls)}
    unknown = [k for k in params if k not in fields]
    if unknown:
        key = unknown[0]
        raise ConfigError(
            f"unknown parameter {key!r} for {what};{did_you_mean(key, fields)} "
            f"valid: {', '.join(fields) or '(none)'}"
        )
    missing = [n for n, f in fields.items() if f.default is _MISSING and n not in params]
    if missing:
        raise ConfigError(f"{what} needs parameter {missing[0]!r}")
    coerced = {k: None if _is_none(v) and fields[k].default is None
               else _coerce(v, fields[k].type, f"{what}: parameter {k!r}") for k, v in params.items()}
    try:
        component = factory(**coerced)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{what}: {exc}") from None
    validate_params(component, what)
    return component


def resolved_params(component) -> dict:
    """The full parameter mapping of a built component (every default filled in)."""
    cls = type(component)
    if not attrs.has(cls):
        return {}
    out = {}
    for f in _fields(cls):
        value = getattr(component, f.name)
        if isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out
