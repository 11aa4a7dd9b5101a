"""The parameter-sharing model of NAT's training (Section 3.4, "Training the model
parameters w"): the core's DARTS supernet run one path per architecture.

Every edge ``(from, to)`` of the complete cell DAG holds a core
:class:`nascore.nn.supernet.MixedOp` with one module per candidate op; an architecture
(a :class:`~nascore_nat.cell.CellPair`) selects, per edge, the ops its cell puts there
(none, one, or several when two edges share endpoints), so every architecture is a
subgraph whose weights are shared with all others (ENAS [35]).  The cell's ``concat``
nodes form its output; the others are multiplied by zero, which keeps the core network's
channel layout and gives the output of a cell that concatenates only those nodes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nascore.api import ConfigError, InvalidGenomeError

from .cell import NONE_OP, Cell, CellPair


def _concat_hook(module, inputs, output):
    return output * module.nat_concat_mask.view(1, -1, 1, 1)


class CellSupernet(nn.Module):
    """A :class:`nascore.nn.supernet.DartsSupernet` over ``op_names`` with ``nodes``
    intermediate nodes whose normal / reduction cells output the given ``concat`` nodes."""

    def __init__(self, op_names: Sequence[str], input_shape, num_classes: int, *, nodes: int,
                 concat: dict[str, Sequence[int]], C: int = 8, layers: int = 5, affine: bool = False):
        super().__init__()
        from nascore.nn.supernet import DartsSupernet

        self.net = DartsSupernet(list(op_names), input_shape, num_classes, C=C, layers=layers, nodes=nodes,
                                 affine=affine)
        self.op_names = self.net.op_names
        self.nodes = nodes
        self.concat = {k: tuple(int(c) for c in v) for k, v in concat.items()}
        self._edge_index = {edge: e for e, edge in enumerate(self.net.edges)}
        self._op_index = {o: i for i, o in enumerate(self.op_names)}
        for cell in self.net.cells:
            self._mask_concat(cell, self.concat["reduce" if cell.reduction else "normal"])

    def _mask_concat(self, cell, concat: tuple[int, ...]) -> None:
        if sorted(concat) == list(range(2, self.nodes + 2)):
            return
        C = cell.preprocess1[1].out_channels
        mask = torch.zeros(self.nodes * C)
        for c in concat:
            mask[(c - 2) * C:(c - 1) * C] = 1.0
        cell.register_buffer("nat_concat_mask", mask)
        cell.register_forward_hook(_concat_hook)

    def weight_parameters(self):
        return self.net.weight_parameters()

    def path(self, pair: CellPair) -> dict[str, list]:
        """Per cell kind, one entry per supernet edge: None, an op index, or a tuple of them."""
        return {"normal": self._cell_path(pair.normal), "reduce": self._cell_path(pair.reduce)}

    def _cell_path(self, cell: Cell) -> list:
        if cell.num_nodes != self.nodes:
            raise InvalidGenomeError(
                f"{cell.name} cell has {cell.num_nodes} intermediate nodes, the supernet {self.nodes}"
            )
        chosen: list[list[int]] = [[] for _ in self.net.edges]
        for i, e in enumerate(cell.edges):
            if e.op == NONE_OP:
                continue
            if e.op not in self._op_index:
                raise ConfigError(
                    f"{cell.name} cell edge {i} ({e.describe()}): op {e.op!r} is not in the supernet "
                    f"(ops: {', '.join(self.op_names)})"
                )
            chosen[self._edge_index[(e.src, e.dst)]].append(self._op_index[e.op])
        return [None if not c else c[0] if len(c) == 1 else tuple(c) for c in chosen]

    def forward(self, x, pair: CellPair):
        return self.net(x, path=self.path(pair))

    @torch.no_grad()
    def accuracy(self, pair: CellPair, X: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
        """Accuracy (fraction) of ``pair`` under the shared weights, BN on batch statistics
        (one-shot evaluation: running statistics are shared by every path and fit none).
        The supernet stays in training mode for its whole life (toggling the mode of its
        thousands of modules costs more than a forward pass)."""
        correct = 0
        path = self.path(pair)
        for i in range(0, len(X), batch_size):
            out = self.net(X[i:i + batch_size], path=path)
            correct += int((out.argmax(1) == y[i:i + batch_size]).sum())
        return correct / max(len(X), 1)
