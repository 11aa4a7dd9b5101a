"""Costs of cells in a stacked network and the guarantee ``cost(alpha) <= cost(beta)``.

NAT's transitions (Fig. 2c) rely on ``c(O) > c(S) > c(N)``.  That holds in normal cells
(a skip connection is the identity), but in a reduction cell a skip connection leaving
an input node is a factorized reduction (two 1x1 convolutions) and costs more than a
pooling op or a null edge.  :class:`EdgeCosts` therefore measures every op at every
place it occurs in the network (channels, stride, resolution of each cell) and forbids a
transition that makes an edge dearer in parameters or multiply-adds; since a cell's cost
is the sum of its edges' costs plus parts NAT never changes (preprocessing, stem,
classifier), the network then never gets dearer.  :func:`enforce_budget` re-checks the
built networks and reverts offending edges should anything slip through.
"""

from __future__ import annotations

import functools
import math

from .cell import Cell, CellPair


def genotype_dict(pair: CellPair) -> dict:
    """The core's genotype mapping (``normal`` / ``reduce`` edge lists and concats)."""
    return {
        "normal": [tuple(e) for e in pair.normal.entries()], "normal_concat": list(pair.normal.concat),
        "reduce": [tuple(e) for e in pair.reduce.entries()], "reduce_concat": list(pair.reduce.concat),
    }


def build_network(pair: CellPair, input_shape, num_classes: int, C: int, layers: int):
    """The core's DARTS evaluation network built from ``pair``."""
    from nascore.nn.networks import DartsNetwork

    return DartsNetwork(genotype_dict(pair), input_shape, num_classes, C=C, layers=layers)


def network_cost(pair: CellPair, input_shape, num_classes: int, C: int, layers: int) -> dict:
    """``params`` and ``flops`` (multiply-adds per sample) of the network of ``pair``."""
    from nascore.api import count_flops, count_params

    model = build_network(pair, input_shape, num_classes, C, layers)
    return {"params": count_params(model), "flops": count_flops(model, input_shape)}


@functools.lru_cache(maxsize=4096)
def op_cost(op: str, C: int, stride: int, H: int, W: int) -> tuple[int, int]:
    """(parameters, multiply-adds) of op ``op`` on a ``C x H x W`` input with ``stride``."""
    from nascore.api import count_flops, count_params
    from nascore.nn.ops import make_op

    module = make_op(op, C, C, stride)
    return count_params(module), count_flops(module, (C, H, W))


class EdgeCosts:
    """Where each cell kind sits in a DARTS network (channels and resolution per cell),
    and whether replacing an edge's op keeps it at most as expensive everywhere."""

    def __init__(self, input_shape, C: int, layers: int, slack: tuple[float, float] = (0.0, 0.0)):
        """``slack = (params, flops)``: how much dearer one edge may become (0, 0: never
        dearer; ``max_cost_ratio > 1`` sets it to the allowed rise of the whole network)."""
        from nascore.nn.networks import reduction_layers, stem_halvings

        self.slack = (float(slack[0]), float(slack[1]))
        _, H, W = (int(s) for s in input_shape)
        for _ in range(stem_halvings(max(H, W))):
            H, W = math.ceil(H / 2), math.ceil(W / 2)
        self.places: dict[str, set[tuple[int, int, int]]] = {"normal": set(), "reduce": set()}
        channels = C
        for i in range(layers):
            reduction = i in reduction_layers(layers)
            channels = channels * 2 if reduction else channels
            self.places["reduce" if reduction else "normal"].add((channels, H, W))
            if reduction:
                H, W = math.ceil(H / 2), math.ceil(W / 2)

    def edge_ok(self, cell: Cell, index: int, new_op: str) -> bool:
        """Whether edge ``index`` of ``cell`` may carry ``new_op`` instead of its op."""
        e = cell.edges[index]
        kind = "reduce" if cell.reduction else "normal"
        stride = 2 if cell.reduction and e.src < 2 else 1
        for C, H, W in self.places[kind]:
            new, old = op_cost(new_op, C, stride, H, W), op_cost(e.op, C, stride, H, W)
            if new[0] > old[0] + self.slack[0] or new[1] > old[1] + self.slack[1]:
                return False
        return True

    def cost_ok(self, cell: Cell):
        """The ``cost_ok(index, new_op)`` callback of :func:`nascore_nat.cell.transition_mask`."""
        return lambda index, new_op: self.edge_ok(cell, index, new_op)


def enforce_budget(beta: CellPair, alpha: CellPair, cost_fn, ratio: float = 1.0) -> CellPair:
    """``alpha`` with changed edges reverted to ``beta``'s ops, one at a time (last first),
    until ``cost_fn(alpha)`` is at most ``ratio`` times ``cost_fn(beta)`` in params and flops."""
    budget = {k: ratio * v for k, v in cost_fn(beta).items() if k in ("params", "flops")}

    def fits(pair):
        c = cost_fn(pair)
        return c["params"] <= budget["params"] and c["flops"] <= budget["flops"]

    cells = {"normal": list(alpha.normal.ops), "reduce": list(alpha.reduce.ops)}
    changed = [(k, i) for k, cell in (("normal", beta.normal), ("reduce", beta.reduce))
               for i, op in enumerate(cell.ops) if cells[k][i] != op]
    current = alpha
    while not fits(current) and changed:
        kind, i = changed.pop()
        cells[kind][i] = getattr(beta, kind).ops[i]
        current = CellPair(beta.normal.with_ops(cells["normal"]), beta.reduce.with_ops(cells["reduce"]))
    return current

