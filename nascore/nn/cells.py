"""Discrete cells: the DARTS/NASNet cell and the NAS-Bench-201 cell, plus the residual
reduction block of NAS-Bench-201.

A cell is described by its edges ``[(op, from_node, to_node), ...]`` (the form of
``shared/data/genotypes/published.json``); an edge list is independent of any search
space, so plugins can build cells they derive themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import InvalidGenomeError
from .ops import FactorizedReduce, ReLUConvBN, Zero, make_op

Edge = tuple[str, int, int]


def drop_path(x: torch.Tensor, prob: float) -> torch.Tensor:
    """Zero whole samples with probability ``prob`` and rescale the rest (DARTS, Section 3.3,
    evaluation setting "path dropout")."""
    keep = 1.0 - prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x * mask / keep


def _incoming(edges: Sequence[Edge], num_inputs: int) -> list[list[tuple[int, str, int]]]:
    """Per computed node, its incoming edges as ``(edge_index, op, from)``; checks the DAG."""
    if not edges:
        raise InvalidGenomeError("a cell needs at least one edge")
    last = max(int(to) for _, _, to in edges)
    incoming: list[list[tuple[int, str, int]]] = [[] for _ in range(num_inputs, last + 1)]
    for e, (op, src, to) in enumerate(edges):
        if not (0 <= src < to) or to < num_inputs:
            raise InvalidGenomeError(f"cell edge {e} ({op}, {src} -> {to}) does not go forward to a computed node")
        incoming[to - num_inputs].append((e, op, int(src)))
    for k, inc in enumerate(incoming):
        if not inc:
            raise InvalidGenomeError(f"cell node {k + num_inputs} has no incoming edge")
    return incoming


class DartsCell(nn.Module):
    """A discrete DARTS cell (DARTS, Section 2.1 and 3.1.2 / NASNet).

    Inputs are the outputs of the two previous cells, ``c_{k-2}`` (node 0) and ``c_{k-1}``
    (node 1), each preprocessed to ``C`` channels (a factorized reduce for ``c_{k-2}`` when
    the previous cell reduced).  Node ``j >= 2`` sums its incoming edges ``op(node_i)``;
    the output concatenates the ``concat`` nodes.  In a reduction cell the edges leaving
    the inputs have stride 2.
    """

    def __init__(self, edges: Sequence[Edge], concat: Sequence[int], C_pp: int, C_p: int, C: int,
                 reduction: bool, reduction_prev: bool, affine: bool = True):
        super().__init__()
        self.reduction = reduction
        self.drop_path_prob = 0.0
        self.preprocess0 = (FactorizedReduce(C_pp, C, affine=affine) if reduction_prev
                            else ReLUConvBN(C_pp, C, 1, 1, 0, affine=affine))
        self.preprocess1 = ReLUConvBN(C_p, C, 1, 1, 0, affine=affine)
        self.incoming = _incoming(edges, 2)
        self.concat = [int(c) for c in concat]
        if not self.concat or any(not 2 <= c < 2 + len(self.incoming) for c in self.concat):
            raise InvalidGenomeError(
                f"cell concat {list(concat)} must list intermediate nodes 2..{len(self.incoming) + 1}")
        self.ops = nn.ModuleList(
            make_op(op, C, C, 2 if reduction and src < 2 else 1, affine) for op, src, _ in edges
        )
        self.multiplier = len(self.concat)

    def forward(self, s0, s1):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for inc in self.incoming:
            total = 0
            for e, _, src in inc:
                op = self.ops[e]
                h = op(states[src])
                if self.training and self.drop_path_prob > 0 and not isinstance(op, (nn.Identity, Zero)):
                    h = drop_path(h, self.drop_path_prob)
                total = total + h
            states.append(total)
        return torch.cat([states[c] for c in self.concat], dim=1)


class NB201Cell(nn.Module):
    """The NAS-Bench-201 cell (Section 2.1 of the NAS-Bench-201 paper): a DAG over 4 nodes,
    node 0 the input, node ``j`` the sum of ``op(node_i)`` over its edges ``i -> j``, the
    output node 3.  Channels and resolution are kept."""

    def __init__(self, edges: Sequence[Edge], C: int, affine: bool = True):
        super().__init__()
        self.incoming = _incoming(edges, 1)
        self.ops = nn.ModuleList(make_op(op, C, C, 1, affine) for op, _, _ in edges)

    def forward(self, x):
        states = [x]
        for inc in self.incoming:
            total = 0
            for e, _, src in inc:
                total = total + self.ops[e](states[src])
            states.append(total)
        return states[-1]


class ResNetBasicBlock(nn.Module):
    """The residual block NAS-Bench-201 uses between stages: two ReLU-conv-BN 3x3 layers
    (the first strided) plus a shortcut (2x2 average pooling and a 1x1 conv when strided).

    The pooling rounds up so odd sizes match the strided convolution (``ceil(H/2)``).
    """

    def __init__(self, C_in: int, C_out: int, stride: int, affine: bool = True):
        super().__init__()
        self.conv_a = ReLUConvBN(C_in, C_out, 3, stride, 1, affine=affine)
        self.conv_b = ReLUConvBN(C_out, C_out, 3, 1, 1, affine=affine)
        if stride == 2:
            self.shortcut = nn.Sequential(
                nn.AvgPool2d(2, stride=2, padding=0, ceil_mode=True),
                nn.Conv2d(C_in, C_out, 1, bias=False),
            )
        elif C_in != C_out:
            self.shortcut = ReLUConvBN(C_in, C_out, 1, 1, 0, affine=affine)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        return self.shortcut(x) + self.conv_b(self.conv_a(x))
