"""The DARTS / NASNet cell space (Liu et al., DARTS, ICLR 2019, Sections 2.1 and 3.1).

An architecture is a normal cell and a reduction cell.  A cell has two input nodes
(0 = ``c_{k-2}``, 1 = ``c_{k-1}``) and ``nodes`` intermediate nodes ``2 .. nodes+1``; node
``j`` sums two edges ``op(node_i)`` with ``i < j`` (the same input may feed both, as in
ENAS cells).  The genome has, per cell, per node ``j`` and per edge ``k`` in {0, 1}, the
Choice dimensions ``{cell}_node{j}_in{k}`` (an earlier node) and ``{cell}_node{j}_op{k}``
(an op).  The two edges of a node are kept sorted by (input, op) so that equal cells
share one key.

Which nodes form the cell output is a space parameter, not part of the genome:
``concat="all"`` concatenates every intermediate node (DARTS); ``concat="loose"``
concatenates the nodes no other node reads (NASNet/ENAS, and the hand-crafted VGG and
ResNet cells of NAT).  Ops are any registered operation names (:mod:`nascore.nn.ops`):
the default is DARTS's seven non-zero ops; ``include_none`` adds the zero op; published
hand-crafted cells need ``conv_3x3``.  :meth:`DartsSpace.for_genotype` returns the space
that fits a given genotype (node count, ops, concat rule), so every cell of
``shared/data/genotypes/published.json`` loads without guessing parameters.

Genotype forms: ``{"normal": [[op, input], ...], "normal_concat": [...], "reduce": ...,
"reduce_concat": ...}`` (DARTS's ``Genotype``, two consecutive pairs per node) and the
edge form ``[[op, from, to], ...]`` of ``published.json``; ``null`` reads as ``none``.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from typing import ClassVar

import attrs
import numpy as np

from ..arch import Architecture, Choice, SearchSpace
from ..errors import InvalidGenomeError
from ..params import in_range, one_of, param
from .common import DARTS_OPS, as_numpy

CELLS: tuple[str, str] = ("normal", "reduce")
#: DARTS's ops without the zero op: what a discrete DARTS cell samples by default
DEFAULT_OPS: tuple[str, ...] = DARTS_OPS[1:]


def _op_name(op) -> str:
    return "none" if op in (None, "null") else str(op)


def _ops_tuple(value) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")]
    return tuple(_op_name(v) for v in value)


def in_dim(cell: str, node: int, k: int) -> str:
    """Genome key of the input of edge ``k`` of ``node`` in ``cell``."""
    return f"{cell}_node{node}_in{k}"


def op_dim(cell: str, node: int, k: int) -> str:
    """Genome key of the op of edge ``k`` of ``node`` in ``cell``."""
    return f"{cell}_node{node}_op{k}"


@attrs.frozen(slots=False)
class DartsSpace(SearchSpace):
    """DARTS/NASNet cell space: a normal and a reduction cell, two edges per node."""

    name: ClassVar[str] = "darts"

    nodes: int = param(4, help="intermediate nodes per cell (4 in DARTS, 5 in ENAS, 2 in MS-RANAS)",
                       validator=in_range(1))
    ops: tuple[str, ...] = param(DEFAULT_OPS, converter=_ops_tuple,
                                 help="candidate ops of an edge: registered op names, e.g. add conv_3x3")
    include_none: bool = param(False, help="add the zero op 'none' to ops (NAT turns edges into none)")
    distinct_inputs: bool = param(True, help="a node's two edges read different nodes (DARTS); false allows "
                                              "one input twice (ENAS)")
    concat: str = param("all", validator=one_of("all", "loose"),
                        help="cell output: 'all' intermediate nodes (DARTS) or the 'loose' ones (NASNet/ENAS)")
    C: int = param(16, help="initial channels of built networks (36 in DARTS's CIFAR-10 evaluation)",
                   validator=in_range(1))
    layers: int = param(8, help="cells of built networks (20 in DARTS's CIFAR-10 evaluation)",
                        validator=in_range(1))
    drop_path: float = param(0.0, help="path-dropout probability while training (0.2 in DARTS)",
                             validator=in_range(0.0, 1.0, high_open=True))

    def __attrs_post_init__(self):
        from ..plugins import get_operations  # filled by register_operations; imports no torch

        if not self.ops:
            raise ValueError("ops must name at least one operation")
        if len(set(self.ops)) != len(self.ops):
            raise ValueError(f"ops lists an operation twice: {list(self.ops)}")
        registered = get_operations()
        for op in self.ops:
            registered.get(op)  # an unregistered name: UnknownComponentError naming the closest

    # ---- declaration -------------------------------------------------------------
    @property
    def op_names(self) -> tuple[str, ...]:
        """The ops an edge chooses from: ``ops``, with ``none`` first when ``include_none``."""
        if self.include_none and "none" not in self.ops:
            return ("none",) + self.ops
        return self.ops

    def node_ids(self) -> range:
        return range(2, self.nodes + 2)

    def dimensions(self):
        dims = []
        for cell in CELLS:
            for j in self.node_ids():
                for k in (0, 1):
                    dims.append(Choice(in_dim(cell, j, k), tuple(range(j))))
                    dims.append(Choice(op_dim(cell, j, k), self.op_names))
        return dims

    def canonicalize(self, genome: dict) -> dict:
        """Sort the two edges of every node by (input, op)."""
        g = dict(genome)
        for cell in CELLS:
            for j in self.node_ids():
                keys = [(in_dim(cell, j, k), op_dim(cell, j, k)) for k in (0, 1)]
                if not all(a in g and b in g for a, b in keys):
                    continue
                pairs = sorted(((g[a], g[b]) for a, b in keys), key=lambda p: (p[0], str(p[1])))
                for (a, b), (src, op) in zip(keys, pairs):
                    g[a], g[b] = src, op
        return g

    def check(self, genome: dict) -> str | None:
        """With ``distinct_inputs``, a node must not read one input on both edges."""
        if not self.distinct_inputs:
            return None
        for cell in CELLS:
            for j in self.node_ids():
                if genome[in_dim(cell, j, 0)] == genome[in_dim(cell, j, 1)]:
                    return (f"{cell} cell, node {j} reads node {genome[in_dim(cell, j, 0)]} on both edges; "
                            "distinct_inputs=True needs two different inputs")
        return None

    def sample(self, rng: np.random.Generator) -> Architecture:
        """Uniform over valid genomes: per node two inputs (distinct when required) and
        two ops, drawn directly instead of by rejection."""
        g = {}
        for cell in CELLS:
            for j in self.node_ids():
                inputs = rng.choice(j, size=2, replace=not self.distinct_inputs)
                ops = rng.integers(len(self.op_names), size=2)
                for k in (0, 1):
                    g[in_dim(cell, j, k)] = int(inputs[k])
                    g[op_dim(cell, j, k)] = self.op_names[int(ops[k])]
        return Architecture(self.name, self.canonicalize(g))

    def repair(self, genome: dict, rng: np.random.Generator | None = None) -> dict:
        """Give a node that reads one input twice a different second input (the next
        earlier node, cyclically), so decoded unit-cube points are valid."""
        g = dict(genome)
        if self.distinct_inputs:
            for cell in CELLS:
                for j in self.node_ids():
                    a, b = in_dim(cell, j, 0), in_dim(cell, j, 1)
                    if g[a] == g[b]:
                        g[b] = (g[b] + 1) % j
        return self.canonicalize(g)

    def validate(self, genome: Mapping) -> dict:
        """Canonical genome, or InvalidGenomeError naming the cell, node and edge at fault."""
        if isinstance(genome, Mapping):
            for cell in CELLS:
                for j in self.node_ids():
                    for k in (0, 1):
                        self._check_edge(genome, cell, j, k)
        return super().validate(genome)

    def _check_edge(self, genome: Mapping, cell: str, j: int, k: int) -> None:
        where = f"darts: {cell} cell, node {j}, edge {k}"
        src = genome.get(in_dim(cell, j, k), 0)
        if isinstance(src, bool) or not isinstance(src, (int, np.integer)) or not 0 <= src < j:
            raise InvalidGenomeError(f"{where}: input {src!r} is not an earlier node (0..{j - 1})")
        op = genome.get(op_dim(cell, j, k), self.op_names[0])
        if op not in self.op_names:
            raise InvalidGenomeError(f"{where}: op {op!r} is not one of this space's ops "
                                     f"({', '.join(self.op_names)})")

    # ---- cells --------------------------------------------------------------------------
    def node_edges(self, arch: Architecture, cell: str) -> list[list[tuple[int, str]]]:
        """Per intermediate node, its two ``(input, op)`` edges in canonical order."""
        return [[(arch[in_dim(cell, j, k)], arch[op_dim(cell, j, k)]) for k in (0, 1)] for j in self.node_ids()]

    def cell_edges(self, arch: Architecture, cell: str) -> list[tuple[str, int, int]]:
        """``[(op, from, to), ...]`` of one cell, in canonical order."""
        return [(op, src, j) for j, edges in zip(self.node_ids(), self.node_edges(arch, cell)) for src, op in edges]

    def concat_nodes(self, arch: Architecture, cell: str) -> list[int]:
        """The intermediate nodes concatenated into the cell's output (see ``concat``)."""
        if self.concat == "all":
            return list(self.node_ids())
        read = {src for _, src, _ in self.cell_edges(arch, cell)}
        return [j for j in self.node_ids() if j not in read]

    # ---- views ----------------------------------------------------------------------------
    def tokens(self, arch: Architecture) -> list[str]:
        """One op per edge in canonical order, the normal cell's then the reduction cell's."""
        return [op for cell in CELLS for op, _, _ in self.cell_edges(arch, cell)]

    def cell_graph(self, arch: Architecture, cell: str):
        """One cell as a ``networkx.MultiDiGraph``: nodes 0, 1 (inputs), 2..nodes+1 and the
        output ``nodes+2``; op edges carry ``op`` (``none`` included) and ``slot`` (0/1),
        output edges carry ``op="concat"``.  A multigraph because a node may read one
        input twice (ENAS cells)."""
        import networkx as nx

        g = nx.MultiDiGraph(space=self.name, cell=cell)
        out = self.nodes + 2
        g.add_node(0, kind="input", label="c_{k-2}")
        g.add_node(1, kind="input", label="c_{k-1}")
        for j in self.node_ids():
            g.add_node(j, kind="node", label=str(j))
        g.add_node(out, kind="output", label="c_{k}")
        for e, (op, src, dst) in enumerate(self.cell_edges(arch, cell)):
            g.add_edge(src, dst, key=e % 2, op=op, slot=e % 2)
        for j in self.concat_nodes(arch, cell):
            g.add_edge(j, out, key=0, op="concat", slot=0)
        return g

    def graph(self, arch: Architecture):
        """Both cells in one ``networkx.MultiDiGraph`` (a DiGraph subclass): node ``(cell, i)``
        is node ``i`` of :meth:`cell_graph`, with attributes ``cell``, ``kind``, ``label``;
        ``graph.graph["cells"]`` names the two cells."""
        import networkx as nx

        g = nx.MultiDiGraph(space=self.name, cells=CELLS)
        for cell in CELLS:
            sub = self.cell_graph(arch, cell)
            for v, data in sub.nodes(data=True):
                g.add_node((cell, v), cell=cell, **data)
            for u, v, key, data in sub.edges(keys=True, data=True):
                g.add_edge((cell, u), (cell, v), key=key, cell=cell, **data)
        return g

    def build(self, arch: Architecture, task):
        """A DARTS evaluation network (:class:`~nascore.nn.networks.DartsNetwork`)."""
        from ..nn.networks import DartsNetwork, image_shape

        return DartsNetwork(self.to_genotype(arch, form="edges"), image_shape(task), task.num_classes,
                            C=self.C, layers=self.layers, drop_path_prob=self.drop_path)

    def supernet(self, task, affine: bool = False):
        """A weight-sharing :class:`~nascore.nn.supernet.DartsSupernet` over ``op_names``
        (every intermediate node concatenated, whatever ``concat`` says)."""
        from ..nn.networks import image_shape
        from ..nn.supernet import DartsSupernet

        return DartsSupernet(self.op_names, image_shape(task), task.num_classes, C=self.C,
                             layers=self.layers, nodes=self.nodes, affine=affine)

    # ---- supernet paths ------------------------------------------------------------------
    def supernet_edges(self) -> list[tuple[int, int]]:
        """The edges ``(from, to)`` of a search cell, in the supernet's order."""
        return [(i, j) for j in self.node_ids() for i in range(j)]

    def to_path(self, arch: Architecture) -> dict[str, list]:
        """Per cell, per supernet edge: the op index (None when the edge is absent, a tuple
        when the node reads that input twice)."""
        index = {e: n for n, e in enumerate(self.supernet_edges())}
        path = {}
        for cell in CELLS:
            entries: list = [None] * len(index)
            for op, src, dst in self.cell_edges(arch, cell):
                e, o = index[(src, dst)], self.op_names.index(op)
                entries[e] = o if entries[e] is None else (entries[e], o)
            path[cell] = entries
        return path

    def from_path(self, path: Mapping) -> Architecture:
        """The architecture of a single path; every node needs exactly two active ops."""
        edges = self.supernet_edges()
        genome = {}
        for cell in CELLS:
            entries = list(path[cell])
            if len(entries) != len(edges):
                raise InvalidGenomeError(f"darts: the {cell} path needs {len(edges)} entries, got {len(entries)}")
            chosen: dict[int, list[tuple[int, str]]] = {j: [] for j in self.node_ids()}
            for (src, dst), entry in zip(edges, entries):
                for o in ([] if entry is None else [entry] if np.ndim(entry) == 0 else list(entry)):
                    if not 0 <= int(o) < len(self.op_names):
                        raise InvalidGenomeError(f"darts: {cell} edge {src}->{dst} has op index {o!r}")
                    chosen[dst].append((src, self.op_names[int(o)]))
            for j, pairs in chosen.items():
                if len(pairs) != 2:
                    raise InvalidGenomeError(f"darts: {cell} node {j} has {len(pairs)} active ops in the path; "
                                             "a cell node needs exactly 2")
                for k, (src, op) in enumerate(pairs):
                    genome[in_dim(cell, j, k)], genome[op_dim(cell, j, k)] = src, op
        return self.make(genome)

    def from_weights(self, weights: Mapping) -> Architecture:
        """Discretize mixture weights or alphas (DARTS Section 2.4): per node, keep the two
        incoming edges whose strongest non-zero op is strongest, with that op."""
        edges = self.supernet_edges()
        live = np.array([op != "none" for op in self.op_names])
        genome = {}
        for cell in CELLS:
            w = as_numpy(weights[cell]).astype(float)
            if w.shape != (len(edges), len(self.op_names)):
                raise InvalidGenomeError(f"darts: {cell} weights must be {len(edges)} x {len(self.op_names)}, "
                                         f"got shape {w.shape}")
            w = np.where(live[None, :], w, -np.inf)
            for j in self.node_ids():
                rows = [e for e, (_, dst) in enumerate(edges) if dst == j]
                strength = w[rows].max(axis=1)
                top = [rows[i] for i in np.argsort(-strength, kind="stable")[:2]]
                for k, e in enumerate(sorted(top)):
                    genome[in_dim(cell, j, k)] = edges[e][0]
                    genome[op_dim(cell, j, k)] = self.op_names[int(w[e].argmax())]
        return self.make(genome)

    # ---- genotypes -----------------------------------------------------------------------
    def to_genotype(self, arch: Architecture, form: str = "pairs") -> dict:
        """DARTS genotype: ``form="pairs"`` gives ``[[op, input], ...]`` per cell, ``"edges"``
        gives ``[[op, from, to], ...]``; both with ``{cell}_concat``."""
        if form not in ("pairs", "edges"):
            raise ValueError(f"form must be 'pairs' or 'edges', got {form!r}")
        out = {}
        for cell in CELLS:
            edges = self.cell_edges(arch, cell)
            out[cell] = [[op, src] if form == "pairs" else [op, src, dst] for op, src, dst in edges]
            out[f"{cell}_concat"] = self.concat_nodes(arch, cell)
        return out

    def from_genotype(self, genotype) -> Architecture:
        """The architecture of a genotype (either form, a mapping or its JSON text)."""
        cells = parse_genotype(genotype)
        genome = {}
        for cell, (nodes, concat) in cells.items():
            if len(nodes) != self.nodes:
                raise InvalidGenomeError(f"darts: the {cell} cell has {len(nodes)} intermediate nodes, this space "
                                         f"{self.nodes}; use DartsSpace.for_genotype(...) or set nodes={len(nodes)}")
            for j, pairs in zip(self.node_ids(), nodes):
                for k, (src, op) in enumerate(pairs):
                    if op not in self.op_names:
                        raise InvalidGenomeError(f"darts: {cell} node {j} uses op {op!r}, which this space lacks; "
                                                 "use DartsSpace.for_genotype(...) or add it to ops")
                    genome[in_dim(cell, j, k)], genome[op_dim(cell, j, k)] = src, op
        arch = self.make(genome)
        for cell, (_, concat) in cells.items():
            if concat is not None and sorted(concat) != self.concat_nodes(arch, cell):
                raise InvalidGenomeError(f"darts: {cell}_concat {list(concat)} is not what concat={self.concat!r} "
                                         f"gives ({self.concat_nodes(arch, cell)}); use DartsSpace.for_genotype(...)")
        return arch

    @classmethod
    def for_genotype(cls, genotype, **params) -> "DartsSpace":
        """A space that holds ``genotype``: its node count, DARTS's ops plus any other op it
        uses, ``include_none`` when it has zero edges, ``distinct_inputs`` unless a node
        reads one input twice, and the concat rule its ``*_concat`` lists follow.
        ``params`` set the rest (``C``, ``layers``, ...)."""
        cells = parse_genotype(genotype)
        counts = {len(nodes) for nodes, _ in cells.values()}
        if len(counts) != 1:
            raise InvalidGenomeError("darts: the normal and reduce cells have different node counts")
        used = [op for nodes, _ in cells.values() for pairs in nodes for _, op in pairs]
        extra = [op for op in dict.fromkeys(used) if op not in DEFAULT_OPS and op != "none"]
        repeated = any(pairs[0][0] == pairs[1][0] for nodes, _ in cells.values() for pairs in nodes)
        inferred = dict(nodes=counts.pop(), ops=DEFAULT_OPS + tuple(extra), include_none="none" in used,
                        distinct_inputs=not repeated, concat=_concat_rule(cells))
        return cls(**{**inferred, **params})

    # ---- string form --------------------------------------------------------------------
    def to_string(self, arch: Architecture) -> str:
        """The JSON genotype (pairs form)."""
        return json.dumps(self.to_genotype(arch))

    def from_string(self, text: str) -> Architecture:
        """A JSON genotype (either form), DARTS's ``Genotype(normal=[...], ...)`` text, or a
        JSON genome."""
        if not isinstance(text, str):
            raise InvalidGenomeError(f"darts: expected a genotype string, got {type(text).__name__}")
        s = text.strip()
        if s.startswith("Genotype("):
            return self.from_genotype(_parse_genotype_repr(s))
        try:
            data = json.loads(s)
        except json.JSONDecodeError as exc:
            raise InvalidGenomeError(f"darts: cannot parse {text[:60]!r}: {exc.msg}") from None
        if isinstance(data, Mapping) and "normal" in data:
            return self.from_genotype(data)
        return self.make(data)


# --------------------------------------------------------------------------- parsing


def parse_genotype(genotype) -> dict[str, tuple[list[list[tuple[int, str]]], list[int] | None]]:
    """``{cell: (nodes, concat)}`` where ``nodes[j-2]`` lists node ``j``'s two
    ``(input, op)`` edges; accepts both genotype forms, a mapping or JSON text."""
    if isinstance(genotype, str):
        try:
            genotype = json.loads(genotype)
        except json.JSONDecodeError as exc:
            raise InvalidGenomeError(f"darts: cannot parse genotype JSON: {exc.msg}") from None
    if not isinstance(genotype, Mapping):
        raise InvalidGenomeError(
            f"darts: a genotype is a mapping with 'normal' and 'reduce', got {type(genotype).__name__}")
    out = {}
    for cell in CELLS:
        if cell not in genotype:
            raise InvalidGenomeError(f"darts: the genotype lacks the {cell!r} cell")
        concat = genotype.get(f"{cell}_concat")
        out[cell] = (_parse_cell(genotype[cell], cell), None if concat is None else [int(c) for c in concat])
    return out


def _parse_cell(items, cell: str) -> list[list[tuple[int, str]]]:
    items = [list(it) for it in items]
    if not items:
        raise InvalidGenomeError(f"darts: the {cell} cell has no edges")
    if all(len(it) == 2 for it in items):
        if len(items) % 2:
            raise InvalidGenomeError(f"darts: the {cell} cell lists {len(items)} [op, input] pairs; a node takes 2")
        items = [[op, src, 2 + n // 2] for n, (op, src) in enumerate(items)]
    elif not all(len(it) == 3 for it in items):
        raise InvalidGenomeError(f"darts: {cell} edges must all be [op, input] or all [op, from, to]")
    for op, src, to in items:
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (src, to)) or not 0 <= src < to or to < 2:
            raise InvalidGenomeError(f"darts: {cell} edge {[op, src, to]} must go from an earlier node to a node >= 2")
    nodes: list[list[tuple[int, str]]] = [[] for _ in range(2, max(to for _, _, to in items) + 1)]
    for op, src, to in items:
        nodes[to - 2].append((src, _op_name(op)))
    for j, pairs in enumerate(nodes, start=2):
        if len(pairs) != 2:
            raise InvalidGenomeError(f"darts: {cell} node {j} has {len(pairs)} incoming edges; a node needs exactly 2")
    return nodes


def _concat_rule(cells) -> str:
    """'all' or 'loose', whichever both cells' concat lists follow (absent lists follow both)."""
    fits = {"all": True, "loose": True}
    for nodes, concat in cells.values():
        if concat is None:
            continue
        ids = list(range(2, len(nodes) + 2))
        read = {src for pairs in nodes for src, _ in pairs}
        fits["all"] &= sorted(concat) == ids
        fits["loose"] &= sorted(concat) == [j for j in ids if j not in read]
    for rule in ("all", "loose"):
        if fits[rule]:
            return rule
    raise InvalidGenomeError("darts: the *_concat lists are neither all intermediate nodes nor the unread ones")


def _parse_genotype_repr(text: str) -> dict:
    """Read DARTS's ``Genotype(normal=[('op', 0), ...], normal_concat=range(2, 6), ...)``
    without evaluating code (literals and ``range`` calls only)."""
    try:
        call = ast.parse(text, mode="eval").body
        if not isinstance(call, ast.Call):
            raise ValueError("not a call")
        out = {}
        for kw in call.keywords:
            v = kw.value
            if isinstance(v, ast.Call) and getattr(v.func, "id", None) == "range":
                out[kw.arg] = list(range(*[ast.literal_eval(a) for a in v.args]))
            else:
                out[kw.arg] = ast.literal_eval(v)
        return out
    except (SyntaxError, ValueError) as exc:
        raise InvalidGenomeError(f"darts: cannot read {text[:60]!r} as a DARTS Genotype: {exc}") from None

