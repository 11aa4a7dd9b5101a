"""The NAS-Bench-201 cell space (Dong & Yang, ICLR 2020, Section 2.1).

A cell is a DAG over 4 nodes with an operation on each of its 6 edges, chosen from
``none``, ``skip_connect``, ``nor_conv_1x1``, ``nor_conv_3x3`` and ``avg_pool_3x3``:
5^6 = 15,625 architectures.  The genome has one Choice dimension per edge, named
``"j<-i"`` for the edge from node i to node j, in the benchmark's edge order
``1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2``.  The standard string form is
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (node 1, node 2, node 3 with their inputs).
Isomorphic cells keep distinct genomes, as in the benchmark's table.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import ClassVar

import attrs
import numpy as np

from ..arch import Architecture, Choice, SearchSpace
from ..errors import InvalidGenomeError
from ..params import in_range, param
from .common import NB201_EDGES, NB201_OPS, as_numpy

_TOKEN = re.compile(r"([A-Za-z0-9_]+)~(\d+)")


def edge_name(src: int, dst: int) -> str:
    """Genome key of the edge ``src -> dst``: ``"dst<-src"``."""
    return f"{dst}<-{src}"


EDGE_NAMES: tuple[str, ...] = tuple(edge_name(i, j) for i, j in NB201_EDGES)


@attrs.frozen(slots=False)
class NB201Space(SearchSpace):
    """NAS-Bench-201 cell space: 6 edges x 5 ops, networks of 3 stages of N cells."""

    name: ClassVar[str] = "nb201"
    ops: ClassVar[tuple[str, ...]] = NB201_OPS

    C: int = param(16, help="channels of the first stage (16 in the benchmark)", validator=in_range(1))
    N: int = param(5, help="cells per stage (5 in the benchmark; 1-2 suit tiny tasks)", validator=in_range(1))

    def dimensions(self):
        return [Choice(n, NB201_OPS) for n in EDGE_NAMES]

    # ---- views -------------------------------------------------------------------
    def tokens(self, arch: Architecture) -> list[str]:
        """The 6 ops in the benchmark's edge order."""
        g = arch.genome
        return [g[n] for n in EDGE_NAMES]

    def edges(self, arch: Architecture) -> list[tuple[str, int, int]]:
        """``[(op, from, to), ...]`` in the benchmark's edge order."""
        g = arch.genome
        return [(g[n], i, j) for n, (i, j) in zip(EDGE_NAMES, NB201_EDGES)]

    def graph(self, arch: Architecture):
        """DiGraph over nodes 0 (input) .. 3 (output); each of the 6 edges carries ``op``
        (``none`` edges included: filter them for the connectivity)."""
        import networkx as nx

        g = nx.DiGraph(space=self.name)
        for v, label in enumerate(("input", "1", "2", "output")):
            g.add_node(v, label=label)
        for op, i, j in self.edges(arch):
            g.add_edge(i, j, op=op)
        return g

    def build(self, arch: Architecture, task):
        """The benchmark's network (stem, 3 stages of N cells, residual reductions)."""
        from ..nn.networks import NB201Network, image_shape

        return NB201Network(self.edges(arch), image_shape(task), task.num_classes, C=self.C, N=self.N)

    def supernet(self, task, affine: bool = False):
        """A weight-sharing :class:`~nascore.nn.supernet.NB201Supernet` of this space."""
        from ..nn.networks import image_shape
        from ..nn.supernet import NB201Supernet

        return NB201Supernet(NB201_OPS, image_shape(task), task.num_classes, C=self.C, N=self.N, affine=affine)

    def canonical(self, arch: Architecture) -> str:
        """The cell as the expression its output node computes, so that isomorphic cells and
        cells differing only on dead edges share it: ``skip_connect`` is the identity, ``none``
        and any op applied to a zero node (one fed by ``none`` alone) give ``#``, a node sums
        its sorted input terms.  Reproduces the benchmark's ``unique_str`` labels exactly
        (6,466 classes over the 15,625 cells)."""
        node = {0: "0"}
        for j in range(1, 4):
            terms = []
            for op, i, dst in self.edges(arch):
                if dst != j:
                    continue
                if op == "none" or node[i] == "#":
                    terms.append("#")
                else:
                    terms.append(node[i] if op == "skip_connect" else f"({node[i]})@{op}")
            node[j] = "+".join(sorted(terms))
        return node[3]

    # ---- supernet paths ---------------------------------------------------------------
    def to_path(self, arch: Architecture) -> list[int]:
        """The supernet path of ``arch``: the index in ``ops`` of each edge's op."""
        return [NB201_OPS.index(op) for op in self.tokens(arch)]

    def from_path(self, path: Sequence[int]) -> Architecture:
        """The architecture of a single path (one op index per edge)."""
        if len(path) != len(EDGE_NAMES):
            raise InvalidGenomeError(f"nb201: a path has 6 op indices, got {len(path)}")
        genome = {}
        for n, i in zip(EDGE_NAMES, path):
            if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < len(NB201_OPS):
                raise InvalidGenomeError(f"nb201: edge {n} has op index {i!r}; valid: 0..{len(NB201_OPS) - 1}")
            genome[n] = NB201_OPS[int(i)]
        return self.make(genome)

    def from_weights(self, weights) -> Architecture:
        """Discretize mixture weights or alphas (6 x 5): the strongest op per edge
        (DARTS Section 2.4 applied to NAS-Bench-201, as in the benchmark's baselines)."""
        w = np.asarray(as_numpy(weights), dtype=float)
        if w.shape != (len(EDGE_NAMES), len(NB201_OPS)):
            raise InvalidGenomeError(f"nb201: weights must be 6 x 5, got shape {w.shape}")
        return self.from_path([int(i) for i in w.argmax(axis=1)])

    # ---- string form -------------------------------------------------------------------
    def to_string(self, arch: Architecture) -> str:
        ops = self.tokens(arch)
        nodes, k = [], 0
        for j in range(1, 4):
            nodes.append("|" + "|".join(f"{ops[k + i]}~{i}" for i in range(j)) + "|")
            k += j
        return "+".join(nodes)

    def from_string(self, text: str) -> Architecture:
        """Parse ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (or a JSON genome)."""
        if not isinstance(text, str):
            raise InvalidGenomeError(f"nb201: expected a cell string, got {type(text).__name__}")
        s = text.strip()
        if s.startswith("{"):
            return super().from_string(s)
        nodes = s.split("+")
        if len(nodes) != 3:
            raise InvalidGenomeError(f"nb201: {text!r} must have 3 nodes joined by '+', like "
                                     "'|nor_conv_3x3~0|+|skip_connect~0|none~1|+|...|'")
        genome = {}
        for j, node in enumerate(nodes, start=1):
            if not (node.startswith("|") and node.endswith("|")):
                raise InvalidGenomeError(f"nb201: node {j} {node!r} must be enclosed in '|'")
            parts = node[1:-1].split("|")
            if len(parts) != j:
                raise InvalidGenomeError(f"nb201: node {j} {node!r} needs {j} edges 'op~i', got {len(parts)}")
            for i, part in enumerate(parts):
                m = _TOKEN.fullmatch(part)
                if m is None or int(m.group(2)) != i:
                    raise InvalidGenomeError(f"nb201: node {j} edge {part!r} must read 'op~{i}'")
                if m.group(1) not in NB201_OPS:
                    raise InvalidGenomeError(f"nb201: unknown op {m.group(1)!r} on edge {j}<-{i}; "
                                             f"valid: {', '.join(NB201_OPS)}")
                genome[edge_name(i, j)] = m.group(1)
        return self.make(genome)

