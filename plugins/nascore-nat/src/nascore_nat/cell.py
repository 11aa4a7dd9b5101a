"""Cells as graphs of O / S / N edges and the transitions NAT may make (NAT Section 3.1).

A cell has two input nodes (0: the output of the cell before the previous one, 1: the
output of the previous cell) and ``B`` intermediate nodes ``2 .. B+1``; every
intermediate node sums exactly two incoming edges, each carrying an operation.  NAT
divides operations into three categories (Fig. 2c): ``N`` the null connection
(``none``), ``S`` the skip connection (``skip_connect``) and ``O`` any other
(computational) operation.  The allowed transitions are

    O -> O (keep), S, N        S -> S (keep), N        N -> N (keep), S

They do not by themselves keep the cost from rising: ``N -> S`` adds an edge, and a skip
out of a reduction cell's inputs is a parameterised factorized reduction, dearer than a
pooling op.  ``transition_mask(cell, cost_ok)`` forbids those where the cost must not
rise (:mod:`nascore_nat.costs`).

A policy therefore chooses, for every edge, one of three actions ``keep`` / ``skip`` /
``none``; :func:`transition_mask` says which of them are allowed for each edge.  An
action that would reproduce the edge's current op by another name (``skip`` on an S
edge, ``none`` on an N edge) is masked out so that every architecture has exactly one
action sequence.

This module is pure Python (no torch): cells are immutable values that validate
themselves and name the offending edge in every error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import attrs
import numpy as np

from nascore.api import InvalidGenomeError, did_you_mean

NONE_OP = "none"
SKIP_OP = "skip_connect"
#: the three actions of the policy, in the order of its output columns
ACTIONS: tuple[str, ...] = ("keep", "skip", "none")
KEEP, SKIP, NONE = 0, 1, 2
#: category -> allowed actions (keep, skip, none), Fig. 2c
ALLOWED: dict[str, tuple[bool, bool, bool]] = {
    "O": (True, True, True),
    "S": (True, False, True),
    "N": (True, True, False),
}


def canonical_op(op) -> str:
    """``null`` (the spelling of NAT's code release) and None read as ``none``."""
    return NONE_OP if op in (None, "null") else str(op)


def category(op: str) -> str:
    """``N`` for the null connection, ``S`` for the skip connection, ``O`` otherwise."""
    op = canonical_op(op)
    if op == NONE_OP:
        return "N"
    if op == SKIP_OP:
        return "S"
    return "O"


def apply_action(op: str, action: int) -> str:
    """The op an edge carries after ``action`` (0 keep, 1 skip, 2 none)."""
    if action == KEEP:
        return canonical_op(op)
    if action == SKIP:
        return SKIP_OP
    if action == NONE:
        return NONE_OP
    raise ValueError(f"action must be 0 (keep), 1 (skip) or 2 (none), got {action!r}")


@attrs.frozen
class Edge:
    """A directed edge ``src -> dst`` carrying operation ``op``."""

    op: str = attrs.field(converter=canonical_op)
    src: int
    dst: int

    def describe(self) -> str:
        return f"{self.op} {self.src}->{self.dst}"


@attrs.frozen
class Cell:
    """An immutable, validated cell: edges sorted by destination, two per node.

    ``concat`` lists the nodes whose outputs are concatenated into the cell's output;
    ``reduction`` marks a reduction cell (stride-2 edges out of the input nodes).
    """

    edges: tuple[Edge, ...]
    concat: tuple[int, ...]
    reduction: bool = False
    name: str = "normal"

    def __attrs_post_init__(self):
        _validate(self)

    # ---- construction --------------------------------------------------------------
    @classmethod
    def from_entries(cls, entries: Sequence, concat=None, *, reduction=False, name="normal") -> "Cell":
        """From ``[op, src, dst]`` triples or DARTS ``(op, src)`` pairs (two per node, in
        node order); ``concat`` defaults to every intermediate node (DARTS)."""
        if not isinstance(entries, (list, tuple)) or not entries:
            raise InvalidGenomeError(f"{name} cell: needs a non-empty list of edges, got {entries!r}")
        edges = [_parse_entry(entry, i, name) for i, entry in enumerate(entries)]
        edges.sort(key=lambda e: e.dst)  # stable: keeps the given order within a node
        if concat is None:
            dsts = sorted({e.dst for e in edges})
            concat = dsts
        try:
            concat = tuple(int(c) for c in concat)
        except (TypeError, ValueError):
            raise InvalidGenomeError(f"{name} cell: concat must be a list of node numbers, got {concat!r}") from None
        return cls(tuple(edges), concat, bool(reduction), name)

    # ---- views --------------------------------------------------------------------
    @property
    def num_nodes(self) -> int:
        """Number of intermediate nodes ``B``."""
        return len(self.edges) // 2

    @property
    def ops(self) -> tuple[str, ...]:
        return tuple(e.op for e in self.edges)

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(category(e.op) for e in self.edges)

    def entries(self) -> list[list]:
        """``[op, src, dst]`` triples (the published-genotype format)."""
        return [[e.op, e.src, e.dst] for e in self.edges]

    def to_json(self) -> dict:
        return {"edges": self.entries(), "concat": list(self.concat), "reduction": self.reduction}

    def with_ops(self, ops: Sequence[str]) -> "Cell":
        if len(ops) != len(self.edges):
            raise ValueError(f"{self.name} cell has {len(self.edges)} edges, got {len(ops)} ops")
        edges = tuple(Edge(op, e.src, e.dst) for op, e in zip(ops, self.edges))
        return attrs.evolve(self, edges=edges)

    def apply(self, actions: Sequence[int]) -> "Cell":
        """The cell after one action per edge; refuses transitions Fig. 2c forbids."""
        mask = transition_mask(self)
        ops = []
        for i, (e, a) in enumerate(zip(self.edges, actions, strict=True)):
            a = int(a)
            if not 0 <= a < 3 or not mask[i, a]:
                raise InvalidGenomeError(
                    f"{self.name} cell edge {i} ({e.describe()}): action {a!r} is not an allowed "
                    f"transition for a {category(e.op)} edge"
                )
            ops.append(apply_action(e.op, a))
        return self.with_ops(ops)

    def actions_to(self, other: "Cell") -> list[int]:
        """The action sequence turning this cell into ``other`` (same topology)."""
        if [(e.src, e.dst) for e in self.edges] != [(e.src, e.dst) for e in other.edges]:
            raise InvalidGenomeError(f"{self.name} cell: the two cells have different topologies")
        out = []
        for i, (a, b) in enumerate(zip(self.edges, other.edges)):
            if b.op == a.op:
                out.append(KEEP)
            elif b.op == SKIP_OP and category(a.op) != "S":
                out.append(SKIP)
            elif b.op == NONE_OP and category(a.op) != "N":
                out.append(NONE)
            else:
                raise InvalidGenomeError(
                    f"{self.name} cell edge {i}: {a.describe()} cannot become {b.op!r} (Fig. 2c)"
                )
        return out

    def graph(self):
        """networkx MultiDiGraph: nodes 0..B+1 plus ``out``; edges carry ``op`` and ``index``."""
        import networkx as nx

        g = nx.MultiDiGraph(name=self.name, reduction=self.reduction)
        for n in range(self.num_nodes + 2):
            g.add_node(n, label=("c_{k-2}" if n == 0 else "c_{k-1}" if n == 1 else str(n)))
        g.add_node("out", label="out")
        for i, e in enumerate(self.edges):
            g.add_edge(e.src, e.dst, op=e.op, index=i, category=category(e.op))
        for c in self.concat:
            g.add_edge(c, "out", op="concat", index=None, category=None)
        return g


def _parse_entry(entry, i: int, name: str) -> Edge:
    if isinstance(entry, Mapping):
        entry = [entry.get("op"), entry.get("src", entry.get("from")), entry.get("dst", entry.get("to"))]
    if not isinstance(entry, (list, tuple)) or len(entry) not in (2, 3):
        raise InvalidGenomeError(f"{name} cell edge {i}: expected [op, from, to] or (op, from), got {entry!r}")
    op = entry[0]
    if not isinstance(op, str) and op is not None:
        raise InvalidGenomeError(f"{name} cell edge {i}: op must be a string, got {op!r}")
    src = entry[1]
    dst = entry[2] if len(entry) == 3 else i // 2 + 2
    for what, v in (("from", src), ("to", dst)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise InvalidGenomeError(f"{name} cell edge {i} ({op}): {what} node must be an integer, got {v!r}")
    return Edge(op, int(src), int(dst))


def _find_cycle(cell: Cell):
    import networkx as nx

    g = nx.DiGraph()
    for e in cell.edges:
        g.add_edge(e.src, e.dst)
    try:
        return nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        return None


def _validate(cell: Cell) -> None:
    name = cell.name
    for i, e in enumerate(cell.edges):
        if e.src < 0 or e.dst < 2:
            raise InvalidGenomeError(
                f"{name} cell edge {i} ({e.describe()}): nodes 0 and 1 are the cell's inputs and take "
                "no edges; node numbers are >= 0"
            )
    cycle = _find_cycle(cell)
    if cycle:
        back = [(u, v) for u, v in cycle if u >= v] or [cycle[0]]
        bad = next(i for i, e in enumerate(cell.edges) if (e.src, e.dst) == back[0])
        path = " -> ".join(str(a) for a, _ in cycle) + f" -> {cycle[0][0]}"
        raise InvalidGenomeError(
            f"{name} cell edge {bad} ({cell.edges[bad].describe()}) closes a cycle {path}; a cell must be acyclic"
        )
    for i, e in enumerate(cell.edges):
        if e.src >= e.dst:
            raise InvalidGenomeError(
                f"{name} cell edge {i} ({e.describe()}) goes from a later node to an earlier one; "
                "number the nodes in topological order"
            )
    _check_two_inputs(cell)
    order = [e.dst for e in cell.edges]
    if order != sorted(order):
        raise InvalidGenomeError(f"{name} cell: edges must be listed by destination node, got destinations {order}")
    last = cell.num_nodes + 1
    for c in cell.concat:
        if not 2 <= c <= last:
            raise InvalidGenomeError(f"{name} cell: concat node {c} is not an intermediate node (2..{last})")
    if not cell.concat:
        raise InvalidGenomeError(f"{name} cell: concat is empty; list the nodes forming the cell's output")


def _check_two_inputs(cell: Cell) -> None:
    counts: dict[int, list[int]] = {}
    for i, e in enumerate(cell.edges):
        counts.setdefault(e.dst, []).append(i)
    dsts = sorted(counts)
    expected = list(range(2, 2 + len(dsts)))
    if dsts != expected:
        missing = sorted(set(expected) - set(dsts))
        raise InvalidGenomeError(
            f"{cell.name} cell: intermediate nodes must be numbered 2..{1 + len(dsts)} without gaps; "
            f"node {missing[0]} has no incoming edge"
        )
    for dst, idx in counts.items():
        if len(idx) != 2:
            e = cell.edges[idx[0]]
            what = "one input" if len(idx) == 1 else f"{len(idx)} inputs"
            raise InvalidGenomeError(
                f"{cell.name} cell node {dst} has {what} (edge {idx[0]}: {e.describe()}); every intermediate "
                "node takes exactly two (add a 'none' edge for a missing one)"
            )


def check_ops(cell: Cell, known: Iterable[str]) -> None:
    """Raise :class:`InvalidGenomeError` naming the first edge whose op is not in ``known``."""
    known = set(known) | {NONE_OP}
    for i, e in enumerate(cell.edges):
        if e.op not in known:
            raise InvalidGenomeError(
                f"{cell.name} cell edge {i} ({e.describe()}) uses unknown op {e.op!r};"
                f"{did_you_mean(e.op, known)} known: {', '.join(sorted(known))}"
            )


def transition_mask(cell: Cell, cost_ok=None) -> np.ndarray:
    """Boolean ``E x 3`` matrix of allowed (keep, skip, none) actions per edge (Fig. 2c).

    ``cost_ok(edge_index, new_op) -> bool``, when given, further forbids transitions that
    would make that edge more expensive (a strided skip connection is a factorized
    reduction with parameters, dearer than a pooling or null edge), which is what
    guarantees ``cost(alpha) <= cost(beta)`` in both parameters and multiply-adds.
    """
    mask = np.array([ALLOWED[c] for c in cell.categories], dtype=bool).reshape(-1, 3)
    if cost_ok is not None:
        for i, e in enumerate(cell.edges):
            for a in (SKIP, NONE):
                if mask[i, a] and not cost_ok(i, apply_action(e.op, a)):
                    mask[i, a] = False
    return mask


@attrs.frozen
class CellPair:
    """A genotype: the normal and the reduction cell of a NASNet-style network."""

    normal: Cell
    reduce: Cell

    @property
    def cells(self) -> tuple[Cell, Cell]:
        return (self.normal, self.reduce)

    def to_json(self) -> dict:
        return {
            "normal": self.normal.entries(), "normal_concat": list(self.normal.concat),
            "reduce": self.reduce.entries(), "reduce_concat": list(self.reduce.concat),
        }

    @classmethod
    def from_json(cls, data: Mapping) -> "CellPair":
        """From ``{"normal": [...], "normal_concat": [...], "reduce": ..., "reduce_concat": ...}``
        (a missing reduction cell reuses the normal one, as NAT does for VGG/ResNet)."""
        if not isinstance(data, Mapping) or "normal" not in data:
            raise InvalidGenomeError("a genotype needs a 'normal' list of edges (and 'reduce', '*_concat')")
        normal = Cell.from_entries(data["normal"], data.get("normal_concat"), reduction=False, name="normal")
        reduce_entries = data.get("reduce", data["normal"])
        reduce_concat = data.get("reduce_concat", data.get("normal_concat") if "reduce" not in data else None)
        reduce = Cell.from_entries(reduce_entries, reduce_concat, reduction=True, name="reduce")
        return cls(normal, reduce)

    def apply(self, actions: tuple[Sequence[int], Sequence[int]]) -> "CellPair":
        return CellPair(self.normal.apply(actions[0]), self.reduce.apply(actions[1]))

    def actions_to(self, other: "CellPair") -> tuple[list[int], list[int]]:
        return self.normal.actions_to(other.normal), self.reduce.actions_to(other.reduce)

    def ops(self) -> set[str]:
        return set(self.normal.ops) | set(self.reduce.ops)
