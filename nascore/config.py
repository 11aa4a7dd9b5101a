"""Run configuration: TOML in, validated and fully resolved TOML out.

A run is one TOML file (or an equivalent dict).  Top-level keys set the run; every table
names a component (``name = ...``; ``dataset = ...`` for ``[task]``) and sets its
parameters.  :func:`resolve` builds nothing heavy: it validates names and parameters
against the registry and returns the config with every default filled in.
"""

from __future__ import annotations

import copy
import json
import math
import tomllib
from pathlib import Path
from typing import Any

from .errors import ConfigError, did_you_mean
from .params import NONE

#: top-level scalar keys and their defaults
RUN_KEYS: dict[str, Any] = {
    "name": "run",
    "seed": 0,
    "budget": 20,
    "device": "auto",
    "metric": "valid_accuracy",
}

#: component tables -> (kind, key holding the component name, required, default name)
SECTIONS: dict[str, tuple[str, str, bool, str | None]] = {
    "task": ("dataset", "dataset", False, None),
    "space": ("search_space", "name", True, None),
    "sampler": ("sampler", "name", False, "random"),
    "encoder": ("encoder", "name", False, None),
    "predictor": ("predictor", "name", False, None),
    "optimizer": ("optimizer", "name", False, "random-search"),
    "evaluator": ("evaluator", "name", False, "train"),
    "stopper": ("stopper", "name", False, None),
    "executor": ("executor", "name", False, "local"),
}
LIST_SECTIONS = {"compress": ("compressor", "name")}
OTHER_SECTIONS = {"baseline"}
#: optional top-level flags, resolved only when given (so older run directories still resume)
OPTIONAL_KEYS = {"report": bool}


def load(config) -> dict:
    """Read a TOML path or copy a mapping; malformed TOML is a ConfigError.

    A top-level ``base = "other.toml"`` (relative to the file naming it) starts from that
    config: see :func:`merge` for how the two combine."""
    return _load(config, ())


def _load(config, chain: tuple) -> dict:
    here = Path.cwd()
    if isinstance(config, (str, Path)):
        path = Path(config)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
        here, chain = path.resolve().parent, chain + (path.resolve(),)
    elif isinstance(config, dict):
        data = copy.deepcopy(config)
    else:
        raise ConfigError(f"a config is a TOML path or a dict, got {type(config).__name__}")
    if "base" not in data:
        return data
    base = data.pop("base")
    if not isinstance(base, str):
        raise ConfigError(f"base must be the path of a TOML config, got {base!r}")
    path = (here / base).resolve()
    if path in chain:
        raise ConfigError(f"config {str(chain[-1])!r}: base {base!r} includes itself")
    return merge(_load(path, chain), data)


def merge(base: dict, override: dict) -> dict:
    """``override`` on top of ``base``: top-level keys replace; a component table updates
    the base's table key by key, unless it names another component (then it replaces it);
    ``[[compress]]`` and ``[baseline]`` replace the base's."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        section = SECTIONS.get(key)
        old = out.get(key)
        if section is None or not isinstance(value, dict) or not isinstance(old, dict):
            out[key] = copy.deepcopy(value)
            continue
        name_key = section[1]
        if name_key in value and value[name_key] != old.get(name_key):
            out[key] = copy.deepcopy(value)
        else:
            out[key] = {**old, **copy.deepcopy(value)}
    return out


def _parse_value(text: str):
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(config: dict, sets, *, notes=None) -> dict:
    """Apply ``key=value`` overrides (dotted keys; values parsed as TOML, else strings).

    ``--set executor.name=local`` replaces the component of a table: the table's other
    parameters that the new component does not have are dropped, each with a note
    (appended to ``notes`` when given, else printed on stderr)."""
    original = copy.deepcopy(config)
    config = _apply_overrides(config, sets)
    dropped = _drop_foreign_params(original, config, sets)
    for line in dropped:
        if notes is not None:
            notes.append(line)
        else:
            import sys

            print(f"nascore: note: {line}", file=sys.stderr)
    return config


def _renamed_tables(original: dict, config: dict, sets):
    """``(label, kind, old table, new table, keys set explicitly)`` of every table whose
    component name an override changed."""
    explicit: dict[tuple, set] = {}
    for item in sets or ():
        parts = [p for p in item.partition("=")[0].strip().split(".") if p]
        if len(parts) >= 2:
            explicit.setdefault(tuple(parts[:-1]), set()).add(parts[-1])
    for section, (kind, name_key, _, _) in SECTIONS.items():
        old, new = original.get(section), config.get(section)
        if isinstance(old, dict) and isinstance(new, dict) and old.get(name_key) not in (None, new.get(name_key)):
            yield f"[{section}]", kind, name_key, new, explicit.get((section,), set())
    for section, (kind, name_key) in LIST_SECTIONS.items():
        old, new = original.get(section), config.get(section)
        if isinstance(old, list) and isinstance(new, list):
            for i, (a, b) in enumerate(zip(old, new)):
                if isinstance(a, dict) and isinstance(b, dict) and a.get(name_key) not in (None, b.get(name_key)):
                    yield f"[[{section}]] {i}", kind, name_key, b, explicit.get((section, str(i)), set())


def _drop_foreign_params(original: dict, config: dict, sets) -> list[str]:
    from .plugins import get_registry

    notes = []
    registry = get_registry()
    for label, kind, name_key, table, explicit in _renamed_tables(original, config, sets):
        try:
            valid = {p.name for p in registry.get(kind, table[name_key]).params()}
        except Exception:  # noqa: BLE001 - an unknown name is reported by resolve, with suggestions
            continue
        foreign = [k for k in table if k != name_key and k not in valid and k not in explicit]
        for k in foreign:
            del table[k]
        if foreign:
            notes.append(f"{label}: {table[name_key]!r} has no parameter {', '.join(map(repr, foreign))}; "
                         "dropped with the component it belonged to")
    return notes


def _apply_overrides(config: dict, sets) -> dict:
    config = copy.deepcopy(config)
    for item in sets or ():
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, _, raw = item.partition("=")
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        node = config
        for i, p in enumerate(parts[:-1]):
            if isinstance(node, list):  # an entry of [[compress]]: compress.0.epochs
                if not (p.lstrip("-").isdigit() and -len(node) <= int(p) < len(node)):
                    raise ConfigError(f"--set {key}: {p!r} is not an entry of the list "
                                      f"[[{parts[i - 1]}]] (it has {len(node)}: 0..{len(node) - 1})")
                node = node[int(p)]
                continue
            if p in LIST_SECTIONS and node is config:
                node = node.get(p)
                if not isinstance(node, list) or i + 2 >= len(parts):
                    raise ConfigError(f"--set {key}: address an entry of [[{p}]] by its index, "
                                      f"e.g. {p}.0.name=...")
                continue
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {p!r} is not a table")
        node[parts[-1]] = _parse_value(raw.strip())
    return config


def _section_params(section: str, table: dict, name_key: str) -> tuple[str | None, dict]:
    if not isinstance(table, dict):
        raise ConfigError(f"[{section}] must be a table, got {table!r}")
    params = dict(table)
    name = params.pop(name_key, None)
    if name is not None and not isinstance(name, str):
        raise ConfigError(f"[{section}] {name_key} must be a string, got {name!r}")
    return name, params


def resolve(config: dict) -> dict:
    """Validate every key and return the config with all defaults filled in."""
    from .params import resolved_params
    from .plugins import get_registry

    registry = get_registry()
    known = set(RUN_KEYS) | set(SECTIONS) | set(LIST_SECTIONS) | OTHER_SECTIONS | set(OPTIONAL_KEYS)
    for key in config:
        if key not in known:
            raise ConfigError(f"unknown config key {key!r};{did_you_mean(key, known)} valid: {', '.join(sorted(known))}")
    out: dict[str, Any] = {}
    for key, default in RUN_KEYS.items():
        value = config.get(key, default)
        if key in ("seed", "budget") and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ConfigError(f"{key} must be a non-negative integer, got {value!r}")
        if key in ("name", "device", "metric") and not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        out[key] = value
    for key, kind in OPTIONAL_KEYS.items():
        if key in config:
            if not isinstance(config[key], kind):
                raise ConfigError(f"{key} must be true or false, got {config[key]!r}")
            out[key] = config[key]
    if out["device"] not in ("auto", "cpu", "cuda") and not out["device"].startswith("cuda:"):
        raise ConfigError(f"device must be auto, cpu or cuda, got {out['device']!r}")
    for section, (kind, name_key, required, default) in SECTIONS.items():
        table = config.get(section)
        if table is None:
            if required:
                raise ConfigError(f"the config needs a [{section}] table with {name_key} = ...")
            if default is None:
                continue
            table = {}
        name, params = _section_params(section, table, name_key)
        name = name or default
        if name is None:
            raise ConfigError(f"[{section}] needs {name_key} = ...")
        _inherit_device(registry, kind, name, params, out["device"])
        component = registry.create(kind, name, **params)
        out[section] = {name_key: registry.get(kind, name).name, **_plain(resolved_params(component))}
    for section, (kind, name_key) in LIST_SECTIONS.items():
        tables = config.get(section, [])
        if isinstance(tables, dict):
            tables = [tables]
        if not isinstance(tables, list):
            raise ConfigError(f"[[{section}]] must be a list of tables")
        resolved = []
        for table in tables:
            name, params = _section_params(section, table, name_key)
            if name is None:
                raise ConfigError(f"each [[{section}]] needs {name_key} = ...")
            _inherit_device(registry, kind, name, params, out["device"])
            component = registry.create(kind, name, **params)
            resolved.append({name_key: registry.get(kind, name).name, **_plain(resolved_params(component))})
        if resolved:
            out[section] = resolved
    if "baseline" in config:
        base = config["baseline"]
        if not isinstance(base, dict) or not ({"genome", "string"} & set(base)):
            raise ConfigError("[baseline] needs genome = {...} or string = '...'")
        out["baseline"] = copy.deepcopy(base)
        space_table = dict(out["space"])
        space = registry.create("search_space", space_table.pop("name"), **space_table)
        if "string" in base:
            space.from_string(base["string"])
        else:
            space.validate(base["genome"])
    return out


def _inherit_device(registry, kind: str, name: str, params: dict, device: str) -> None:
    """The run's top-level ``device`` is the default of every component that has a
    ``device`` parameter and does not set its own (``auto`` leaves each component's default)."""
    if device == "auto" or "device" in params:
        return
    try:
        names = {p.name for p in registry.get(kind, name).params()}
    except Exception:  # noqa: BLE001 - an unknown name is reported by registry.create, with suggestions
        return
    if "device" in names:
        params["device"] = device


def _plain(params: dict) -> dict:
    """Make values JSON/TOML friendly; None stays (``dumps`` writes it as ``"none"``, so a
    parameter set to none keeps that value through config.toml and a resume)."""
    out = {}
    for k, v in params.items():
        if isinstance(v, tuple):
            v = list(v)
        out[k] = v
    return out


# --------------------------------------------------------------------------- TOML writer


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items() if x is not None) + "}"
    raise ConfigError(f"cannot write {v!r} to TOML")


def _toml_key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def dumps(config: dict) -> str:
    """Write a config dict (scalars, tables, lists of tables) as TOML; a component
    parameter that is None is written as the string ``"none"`` (:data:`nascore.params.NONE`)."""
    lines = []
    for k, v in config.items():
        if not isinstance(v, dict) and not (isinstance(v, list) and v and all(isinstance(x, dict) for x in v)):
            if v is not None:
                lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
    for k, v in config.items():
        if isinstance(v, dict):
            lines.append(f"\n[{_toml_key(k)}]")
            lines += [f"{_toml_key(a)} = {_toml_value(NONE if b is None else b)}" for a, b in v.items()]
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for item in v:
                lines.append(f"\n[[{_toml_key(k)}]]")
                lines += [f"{_toml_key(a)} = {_toml_value(NONE if b is None else b)}" for a, b in item.items()]
    return "\n".join(lines) + "\n"
