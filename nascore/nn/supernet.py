"""Weight-sharing supernets of the DARTS and NAS-Bench-201 cell spaces.

Every edge of a search cell holds a :class:`MixedOp` with one module per candidate op.
``forward(x, path=None, weights=None)`` runs

* a **single path** (SPOS, Guo et al. 2019, Section 3): ``path`` gives, for every edge, the
  index of its op (``None`` = edge absent, a tuple = several ops summed); only those
  modules run, so only they receive gradients;
* the **continuous relaxation** (DARTS, Section 2.2, Eq. 2): ``weights`` gives, for every
  edge, a weight per op and the edge outputs ``sum_o w_o * o(x)``; without ``path`` and
  ``weights`` the weights are ``softmax(alpha)`` of the supernet's own architecture
  parameters (DARTS Eq. 2).

The same op on the same edge is the same module whatever the path: weights are shared
(ENAS / SPOS one-shot model).  Edges of a cell are ordered by target node, then source
node; ``edges`` lists them as ``(from, to)``.  Architecture parameters are registered as
parameters (so they move with ``.to()`` and are saved in ``state_dict``); train the
network weights with ``weight_parameters()`` and the architecture with
``arch_parameters()``.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ..errors import ConfigError
from .cells import ResNetBasicBlock
from .networks import image_shape, make_stem, nb201_stages, reduction_layers
from .ops import FactorizedReduce, ReLUConvBN, check_op, is_pooling, make_op

PathEntry = int | Sequence[int] | None


class MixedOp(nn.Module):
    """All candidate operations of one edge (DARTS Eq. 2 / SPOS single path).

    In supernets the pooling ops are followed by a non-affine BN, as in the DARTS search
    code, so that their scale matches the convolutions' normalized outputs.
    """

    def __init__(self, op_names: Sequence[str], C_in: int, C_out: int, stride: int, affine: bool = False):
        super().__init__()
        self.op_names = tuple(check_op(o) for o in op_names)
        ops = []
        for name in self.op_names:
            op = make_op(name, C_in, C_out, stride, affine)
            if is_pooling(name):
                op = nn.Sequential(op, nn.BatchNorm2d(C_out, affine=False))
            ops.append(op)
        self.ops = nn.ModuleList(ops)
        self._zero = {i for i, n in enumerate(self.op_names) if n == "none"}

    def forward(self, x, weights: torch.Tensor | None = None, index: PathEntry = None):
        if index is not None:
            if isinstance(index, int):
                return self.ops[index](x)
            return sum(self.ops[i](x) for i in index)
        if weights is None:
            raise ConfigError("MixedOp.forward needs weights (one per op) or an op index")
        if weights.shape[-1] != len(self.ops):
            raise ConfigError(f"MixedOp has {len(self.ops)} ops, got {weights.shape[-1]} weights")
        live = [i for i in range(len(self.ops)) if i not in self._zero]
        if not live:
            return self.ops[0](x)
        # the zero op adds w * 0: skipping it changes neither the output nor any gradient
        return sum(weights[i] * self.ops[i](x) for i in live)


def complete_dag_edges(num_inputs: int, num_nodes: int) -> list[tuple[int, int]]:
    """Every edge ``(from, to)`` into each of ``num_nodes`` computed nodes from all earlier
    nodes (``num_inputs`` inputs first), ordered by target then source."""
    return [(i, j) for j in range(num_inputs, num_inputs + num_nodes) for i in range(j)]


def _normalize_entry(entry):
    if entry is None:
        return None
    if isinstance(entry, numbers.Integral) and not isinstance(entry, bool):
        return int(entry)
    if isinstance(entry, Sequence) and not isinstance(entry, str):
        return tuple(_normalize_entry(i) for i in entry)
    return entry


def _check_path(path, num_edges: int, num_ops: int, what: str) -> list:
    """The path with plain-int entries; ConfigError naming the first bad edge."""
    path = [_normalize_entry(p) for p in path]
    if len(path) != num_edges:
        raise ConfigError(f"{what}: a path needs one entry per edge ({num_edges}), got {len(path)}")
    for e, entry in enumerate(path):
        idx = () if entry is None else (entry,) if isinstance(entry, int) else entry
        if not isinstance(idx, tuple) or any(not isinstance(i, int) or not 0 <= i < num_ops for i in idx):
            raise ConfigError(f"{what}: edge {e} has op index {entry!r}; valid: 0..{num_ops - 1} or None")
    return path


class SearchCellBase(nn.Module):
    """Runs the mixed ops of a complete DAG; subclasses provide the input states."""

    num_inputs = 1

    def _run(self, states: list, path, weights):
        for j in range(self.num_inputs, self.num_inputs + self.num_nodes):
            total = None
            for e in self._into[j]:
                src = self.edges[e][0]
                if path is not None:
                    if path[e] is None:
                        continue
                    h = self.mixed[e](states[src], index=path[e])
                else:
                    h = self.mixed[e](states[src], weights=weights[e])
                total = h if total is None else total + h
            if total is None:  # every input edge absent in this path: the node is zero
                total = torch.zeros_like(self._zero_like(states))
            states.append(total)
        return states

    def _index_edges(self):
        self._into = {j: [e for e, (_, t) in enumerate(self.edges) if t == j]
                      for j in range(self.num_inputs, self.num_inputs + self.num_nodes)}


class DartsSearchCell(SearchCellBase):
    """DARTS search cell (DARTS Section 2.1-2.2): every intermediate node sums mixed ops from
    all earlier nodes; the output concatenates all intermediate nodes."""

    num_inputs = 2

    def __init__(self, op_names, num_nodes: int, C_pp: int, C_p: int, C: int, reduction: bool,
                 reduction_prev: bool, affine: bool = False):
        super().__init__()
        self.reduction = reduction
        self.num_nodes = num_nodes
        self.preprocess0 = (FactorizedReduce(C_pp, C, affine=affine) if reduction_prev
                            else ReLUConvBN(C_pp, C, 1, 1, 0, affine=affine))
        self.preprocess1 = ReLUConvBN(C_p, C, 1, 1, 0, affine=affine)
        self.edges = complete_dag_edges(2, num_nodes)
        self.mixed = nn.ModuleList(
            MixedOp(op_names, C, C, 2 if reduction and i < 2 else 1, affine) for i, _ in self.edges
        )
        self._index_edges()
        self._stride = 2 if reduction else 1

    def _zero_like(self, states):
        """A tensor shaped like this cell's intermediate nodes."""
        return states[1] if self._stride == 1 else states[1][:, :, ::2, ::2]

    def forward(self, s0, s1, path=None, weights=None):
        states = self._run([self.preprocess0(s0), self.preprocess1(s1)], path, weights)
        return torch.cat(states[2:], dim=1)


class NB201SearchCell(SearchCellBase):
    """NAS-Bench-201 search cell: the 6 edges of a 4-node DAG, each a mixed op."""

    def __init__(self, op_names, C: int, affine: bool = False, num_nodes: int = 3):
        super().__init__()
        self.num_nodes = num_nodes
        self.edges = complete_dag_edges(1, num_nodes)
        self.mixed = nn.ModuleList(MixedOp(op_names, C, C, 1, affine) for _ in self.edges)
        self._index_edges()

    def _zero_like(self, states):
        return states[0]

    def forward(self, x, path=None, weights=None):
        return self._run([x], path, weights)[-1]


def _init_alpha(num_edges: int, num_ops: int) -> nn.Parameter:
    """DARTS initializes architecture parameters as 1e-3 times a standard normal."""
    return nn.Parameter(1e-3 * torch.randn(num_edges, num_ops))


class _Supernet(nn.Module):
    """Shared parts: parameter groups and the choice between path, weights and alpha."""

    _alpha_names: tuple[str, ...] = ()

    def arch_parameters(self) -> list[nn.Parameter]:
        """The architecture parameters alpha (one row per edge, one column per op)."""
        return [getattr(self, n) for n in self._alpha_names]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter except the architecture parameters."""
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def _mode(self, path, weights):
        if path is not None and weights is not None:
            raise ConfigError("pass either a path (single path) or weights (mixture), not both")
        if path is None and weights is None:
            weights = self.softmax_weights()
        return path, weights


class DartsSupernet(_Supernet):
    """The DARTS search network (DARTS Section 3.1.1): ``layers`` search cells, reduction
    cells at 1/3 and 2/3 of the depth, ``nodes`` intermediate nodes per cell.

    ``path`` and ``weights`` are mappings with keys ``"normal"`` and ``"reduce"``: per
    edge of ``edges`` an op index (or None / a tuple) for ``path``, a row of op weights
    (tensor ``len(edges) x len(op_names)``) for ``weights``; normal cells share one and
    reduction cells the other, as in DARTS.
    """

    _alpha_names = ("alpha_normal", "alpha_reduce")

    def __init__(self, op_names: Sequence[str], input_shape: Sequence[int], num_classes: int, C: int = 16,
                 layers: int = 8, nodes: int = 4, stem_multiplier: int = 3, affine: bool = False):
        super().__init__()
        C_in, H, W = image_shape(input_shape)
        self.op_names = tuple(check_op(o) for o in op_names)
        self.nodes = nodes
        self.edges = complete_dag_edges(2, nodes)
        C_curr = stem_multiplier * C
        self.stem = make_stem(C_in, C_curr, max(H, W))
        C_pp, C_p, C_curr = C_curr, C_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in reduction_layers(layers)
            C_curr = C_curr * 2 if reduction else C_curr
            self.cells.append(DartsSearchCell(self.op_names, nodes, C_pp, C_p, C_curr, reduction,
                                              reduction_prev, affine))
            C_pp, C_p = C_p, nodes * C_curr
            reduction_prev = reduction
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_p, num_classes)
        self.alpha_normal = _init_alpha(len(self.edges), len(self.op_names))
        self.alpha_reduce = _init_alpha(len(self.edges), len(self.op_names))

    def softmax_weights(self) -> dict[str, torch.Tensor]:
        """DARTS Eq. 2: softmax over the ops of each edge."""
        return {"normal": self.alpha_normal.softmax(-1), "reduce": self.alpha_reduce.softmax(-1)}

    def forward(self, x, path: Mapping | None = None, weights: Mapping | None = None):
        path, weights = self._mode(path, weights)
        if path is not None:
            if not isinstance(path, Mapping) or not {"normal", "reduce"} <= set(path):
                raise ConfigError("a DARTS supernet path is a mapping with 'normal' and 'reduce' entries")
            path = {k: _check_path(path[k], len(self.edges), len(self.op_names), f"{k} cell")
                    for k in ("normal", "reduce")}
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            kind = "reduce" if cell.reduction else "normal"
            s0, s1 = s1, cell(s0, s1, path=None if path is None else path[kind],
                              weights=None if weights is None else weights[kind])
        return self.classifier(self.global_pooling(s1).flatten(1))


class NB201Supernet(_Supernet):
    """The NAS-Bench-201 skeleton with search cells (one alpha row per each of the 6 edges,
    shared by all cells); ``path`` is a list of 6 op indices, ``weights`` a 6 x ops tensor."""

    _alpha_names = ("alpha",)

    def __init__(self, op_names: Sequence[str], input_shape: Sequence[int], num_classes: int,
                 C: int = 16, N: int = 5, affine: bool = False):
        super().__init__()
        C_in, H, W = image_shape(input_shape)
        self.op_names = tuple(check_op(o) for o in op_names)
        self.edges = complete_dag_edges(1, 3)
        self.stem = make_stem(C_in, C, max(H, W))
        blocks, C_prev = [], C
        for C_curr, reduction in nb201_stages(C, N):
            blocks.append(ResNetBasicBlock(C_prev, C_curr, 2) if reduction
                          else NB201SearchCell(self.op_names, C_curr, affine))
            C_prev = C_curr
        self.cells = nn.ModuleList(blocks)
        self.lastact = nn.Sequential(nn.BatchNorm2d(C_prev), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)
        self.alpha = _init_alpha(len(self.edges), len(self.op_names))

    def softmax_weights(self) -> torch.Tensor:
        return self.alpha.softmax(-1)

    def forward(self, x, path: Sequence | None = None, weights: torch.Tensor | None = None):
        path, weights = self._mode(path, weights)
        if path is not None:
            path = _check_path(path, len(self.edges), len(self.op_names), "nb201 supernet")
        x = self.stem(x)
        for block in self.cells:
            x = block(x, path=path, weights=weights) if isinstance(block, NB201SearchCell) else block(x)
        return self.classifier(self.global_pooling(self.lastact(x)).flatten(1))
