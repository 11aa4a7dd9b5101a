"""Input cells from anywhere: the core ``darts`` space, JSON genotype files, run
directories, and the published genotypes; and optimized cells back into the space.

``load_input("DARTS_V2")``, ``load_input("cell.json")``, ``load_input("runs/my-run")``
all return ``(CellPair, DartsSpace)``: the cells to optimize and a ``darts`` space that
holds them (node count, ops, concat rule).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import attrs

from nascore.api import Architecture
from nascore.api import ConfigError, InvalidGenomeError

from .cell import NONE_OP, SKIP_OP, CellPair, check_ops


def _darts_space_class():
    from nascore.api import DartsSpace

    return DartsSpace


def pair_from_arch(arch: Architecture, space) -> CellPair:
    """The cells of a ``darts``-space architecture (its genotype with concat lists)."""
    if not isinstance(space, _darts_space_class()):
        raise ConfigError(
            f"nat optimizes cell architectures with a DARTS genotype; space {getattr(space, 'name', space)!r} "
            "has none (use the 'darts' space)"
        )
    return CellPair.from_json(space.to_genotype(arch, form="edges"))


def space_for_output(space, pair: CellPair):
    """``space`` widened, if needed, to hold ``pair``: ``none`` and ``skip_connect`` edges
    are what NAT introduces; the node count and concat rule never change."""
    ops = tuple(space.ops)
    if SKIP_OP in pair.ops() and SKIP_OP not in space.op_names:
        ops = ops + (SKIP_OP,)
    include_none = space.include_none or NONE_OP in pair.ops()
    if ops == tuple(space.ops) and include_none == space.include_none:
        return space
    return attrs.evolve(space, ops=ops, include_none=include_none)


def arch_from_pair(pair: CellPair, space) -> tuple[Architecture, object]:
    """``(architecture, space)`` of ``pair`` in ``space`` widened by :func:`space_for_output`."""
    out_space = space_for_output(space, pair)
    return out_space.from_genotype(pair.to_json()), out_space


def space_for_pair(pair: CellPair, **params):
    """A ``darts`` space that holds ``pair`` (``DartsSpace.for_genotype``) with ``params``;
    an op nobody registered is an error naming its edge."""
    from nascore.nn.ops import op_names

    known = op_names()
    for cell in pair.cells:
        check_ops(cell, known)
    return _darts_space_class().for_genotype(pair.to_json(), **params)


def load_input(spec: str, defaults: dict | None = None, **space_params) -> tuple[CellPair, object, str]:
    """``(cells, space, label)`` from a published genotype name, a JSON genotype or
    architecture file, a ``result.json`` or a run directory (its best architecture).
    ``space_params`` override the space's parameters; ``defaults`` apply only to inputs
    that carry no space of their own (a run's space keeps its ``C`` and ``layers``)."""
    from . import genotypes

    own = {**(defaults or {}), **space_params}
    key = genotypes.resolve_name(spec)
    if key is not None:
        pair = genotypes.published(key)
        return pair, space_for_pair(pair, **own), key
    path = Path(spec)
    if path.is_dir():
        path = path / "result.json"
        if not path.is_file():
            raise ConfigError(f"{spec}: a run directory needs a result.json (is the run finished?)")
    if not path.is_file():
        raise ConfigError(
            f"{spec!r} is neither a published genotype ({', '.join(genotypes.names())}) "
            "nor an existing file or run directory"
        )
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON: {exc.msg} (line {exc.lineno})") from None
    return _from_json(data, path, own, space_params)


def _from_json(data, path: Path, own: dict, space_params: dict) -> tuple[CellPair, object, str]:
    if isinstance(data, Mapping) and "normal" in data:
        pair = CellPair.from_json(data)
        return pair, space_for_pair(pair, **own), path.stem
    if isinstance(data, Mapping) and isinstance(data.get("best"), Mapping):
        return _from_run(data, path, space_params)
    if isinstance(data, Mapping) and "genome" in data:
        return _from_genome(data["genome"], path, own)
    raise ConfigError(
        f"{path}: expected a genotype ({{'normal': [...], 'reduce': [...]}}), an architecture "
        "({'space': 'darts', 'genome': {...}}) or a run's result.json"
    )


def _from_run(data: Mapping, path: Path, space_params: dict):
    import nascore

    table = dict(data.get("config", {}).get("space", {}))
    name = table.pop("name", "darts")
    if name != "darts":
        raise ConfigError(f"{path}: the run searched space {name!r}; nat needs a 'darts' cell space")
    space = nascore.create("search_space", "darts", **{**table, **space_params})
    arch = space.make(data["best"]["genome"])
    return pair_from_arch(arch, space), space, f"{path.parent.name}-best"


def _from_genome(genome: Mapping, path: Path, space_params: dict):
    """An architecture JSON without its space: rebuild the genotype from the genome keys."""
    from nascore.api import DARTS_CELLS as CELLS, darts_in_dim as in_dim, darts_op_dim as op_dim

    try:
        nodes = 1 + max(int(k.split("_node")[1].split("_")[0]) for k in genome) - 2
        entries = {c: [[genome[op_dim(c, j, k)], genome[in_dim(c, j, k)], j]
                       for j in range(2, nodes + 2) for k in (0, 1)] for c in CELLS}
    except (KeyError, ValueError, IndexError):
        raise InvalidGenomeError(f"{path}: the genome is not a 'darts' genome (keys like normal_node2_op0)") from None
    pair = CellPair.from_json({"normal": entries["normal"], "reduce": entries["reduce"]})
    return pair, space_for_pair(pair, **space_params), path.stem
