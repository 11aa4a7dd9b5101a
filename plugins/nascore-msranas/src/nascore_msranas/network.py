"""The MS-RANAS multi-scale network with early exits (Sections 3.2-3.3, Fig. 3).

Connections (Section 3.2):

* **vertical** (layer 1 only): a stem at the input's size, then one strided 3x3
  convolution per coarser scale, creating every scale;
* **horizontal**: a same-scale 1x1 convolution of the previous layer's feature;
* **diagonal**: a strided 3x3 convolution of the previous layer's finer-scale feature.

At the finest scale a cell reads, like a DARTS cell, the outputs of the two previous
layers at its scale.  At coarser scales its second input is the concatenation of the
diagonal and the horizontal convolution (half the cell's channels each).  Cells are the
core's :class:`~nascore.nn.cells.DartsCell` (final network) or
:class:`~nascore.nn.supernet.DartsSearchCell` (search: DARTS continuous relaxation, one
set of architecture weights for normal and one for reduction cells, shared by every
scale).  Every cell layer can carry a classifier reading the coarsest scale (Section
4.1); ``forward`` returns the list of their logits (or one tensor with a single exit)
and ``forward_until(x, k)`` computes only what exits ``0..k`` need, which is how the
anytime costs of :mod:`nascore_msranas.anytime` are measured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from nascore.api import ConfigError
from nascore.nn.cells import DartsCell
from nascore.nn.networks import image_shape, make_stem, stem_halvings
from nascore.nn.ops import ReLUConvBN, check_op
from nascore.nn.supernet import DartsSearchCell, complete_dag_edges

from .layout import MultiScaleLayout, halve


def node_name(layer: int, scale: int) -> str:
    return f"l{layer}s{scale}"


def make_layout(input_shape: Sequence[int], **params) -> MultiScaleLayout:
    """The layout for an image input shape ``(C, H, W)``: the finest scale has the size the
    core's stem leaves (inputs above 32 pixels are first halved, as in DARTS networks)."""
    _, H, W = image_shape(input_shape)
    side = min(H, W)
    for _ in range(stem_halvings(max(H, W))):
        side = halve(side)
    return MultiScaleLayout(size=side, **params)


class ExitHead(nn.Module):
    """An early classifier on the coarsest scale: ReLU-conv3x3-BN to ``width`` channels,
    ReLU, global average pooling, linear (a one-convolution, narrower version of MSDNet's
    two-convolution classifier)."""

    def __init__(self, C_in: int, width: int, num_classes: int, affine: bool = True):
        super().__init__()
        self.conv = ReLUConvBN(C_in, width, 3, 1, 1, affine=affine)
        self.pool = nn.Sequential(nn.ReLU(inplace=False), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.linear = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.linear(self.pool(self.conv(x)))


class MultiScaleNetworkBase(nn.Module):
    """Wiring shared by the final network and the search network; subclasses build cells
    with :meth:`make_cell` and pass extra arguments to them with :meth:`cell_kwargs`."""

    def __init__(self, input_shape: Sequence[int], num_classes: int, layout: MultiScaleLayout,
                 multipliers: Mapping[str, int], affine: bool):
        super().__init__()
        C_in, H, W = image_shape(input_shape)
        if num_classes < 2:
            raise ConfigError(f"a classifier needs at least 2 classes, got {num_classes}")
        self.layout = layout
        self.num_exits = layout.num_exits
        self._mult = dict(multipliers)
        needed = layout.needed()
        self._active = {l: [s for s in range(layout.scales) if (l, s) in needed] for l in range(layout.layers)}
        self._needed_upto = [layout.needed(range(k + 1)) for k in range(layout.num_exits)]
        self.stem = make_stem(C_in, layout.out_channels(0, 0, 0), max(H, W))
        self.vertical = nn.ModuleList(
            ReLUConvBN(layout.out_channels(0, s - 1, 0), layout.out_channels(0, s, 0), 3, 2, 1, affine=affine)
            for s in range(1, layout.scales))
        self.cells = nn.ModuleDict()
        self.diagonal = nn.ModuleDict()
        self.horizontal = nn.ModuleDict()
        for layer in range(1, layout.layers):
            for scale in self._active[layer]:
                self._build_node(layer, scale, affine)
        self.heads = nn.ModuleList(
            ExitHead(self.out_channels(layer, layout.scales - 1), layout.cell_channels(layer, layout.scales - 1),
                     num_classes)
            for layer in layout.exit_layers)

    # ---- construction ------------------------------------------------------------
    def kind(self, layer: int) -> str:
        return "reduce" if self.layout.is_reduction(layer) else "normal"

    def out_channels(self, layer: int, scale: int) -> int:
        return self.layout.out_channels(layer, scale, 0 if layer == 0 else self._mult[self.kind(layer)])

    def _build_node(self, layer: int, scale: int, affine: bool) -> None:
        lay, name = self.layout, node_name(layer, scale)
        C = lay.cell_channels(layer, scale)
        C_pp = self.out_channels(max(layer - 2, 0), scale)
        if scale == 0:
            C_p = self.out_channels(layer - 1, 0)
        else:
            if C < 2:
                raise ConfigError(f"cells below the finest scale need at least 2 channels, got {C}")
            half = C // 2
            self.diagonal[name] = ReLUConvBN(self.out_channels(layer - 1, scale - 1), half, 3, 2, 1, affine=affine)
            self.horizontal[name] = ReLUConvBN(self.out_channels(layer - 1, scale), C - half, 1, 1, 0, affine=affine)
            C_p = C
        reduction = lay.is_reduction(layer)
        self.cells[name] = self.make_cell(C_pp, C_p, C, reduction, lay.is_reduction(layer - 1))

    def make_cell(self, C_pp: int, C_p: int, C: int, reduction: bool, reduction_prev: bool) -> nn.Module:
        raise NotImplementedError

    def cell_kwargs(self) -> dict[str, dict]:
        """Extra keyword arguments of the cells' forward, per kind ("normal"/"reduce")."""
        return {"normal": {}, "reduce": {}}

    # ---- forward -------------------------------------------------------------------
    def _node(self, layer: int, scale: int, feats: dict, kwargs: dict) -> torch.Tensor:
        name = node_name(layer, scale)
        s0 = feats[(max(layer - 2, 0), scale)]
        if scale == 0:
            s1 = feats[(layer - 1, 0)]
        else:
            s1 = torch.cat([self.diagonal[name](feats[(layer - 1, scale - 1)]),
                            self.horizontal[name](feats[(layer - 1, scale)])], dim=1)
        return self.cells[name](s0, s1, **kwargs[self.kind(layer)])

    def forward_until(self, x: torch.Tensor, k: int) -> list[torch.Tensor]:
        """Logits of exits ``0..k``, computing only the nodes those exits depend on."""
        if not 0 <= k < self.num_exits:
            raise ConfigError(f"exit index {k} out of range: this network has {self.num_exits} exits")
        lay, needed, kwargs = self.layout, self._needed_upto[k], self.cell_kwargs()
        feats = {(0, 0): self.stem(x)}
        for s in range(1, lay.scales):
            feats[(0, s)] = self.vertical[s - 1](feats[(0, s - 1)])
        logits: list[torch.Tensor] = []
        for layer in range(1, lay.layers):
            for scale in self._active[layer]:
                if (layer, scale) in needed:
                    feats[(layer, scale)] = self._node(layer, scale, feats, kwargs)
            for key in [n for n in feats if n[0] < layer - 1]:
                del feats[key]  # nothing reads further back than two layers
            if layer in lay.exit_layers:
                logits.append(self.heads[len(logits)](feats[(layer, lay.scales - 1)]))
                if len(logits) > k:
                    break
        return logits

    def forward(self, x: torch.Tensor):
        logits = self.forward_until(x, self.num_exits - 1)
        return logits if self.num_exits > 1 else logits[0]


class MultiScaleNetwork(MultiScaleNetworkBase):
    """The final MS-RANAS network of a derived genotype (Section 4.4: three scales and
    seven layers by default), made of the core's discrete DARTS cells.

    ``genotype`` holds ``normal`` / ``reduce`` edge lists ``[(op, from, to), ...]`` and
    ``normal_concat`` / ``reduce_concat``.
    """

    def __init__(self, genotype: Mapping, input_shape: Sequence[int], num_classes: int,
                 layout: MultiScaleLayout, drop_path_prob: float = 0.0):
        self.genotype = {k: [tuple(e) if isinstance(e, (list, tuple)) else e for e in v]
                         for k, v in genotype.items()}
        mult = {k: len(self.genotype[f"{k}_concat"]) for k in ("normal", "reduce")}
        super().__init__(input_shape, num_classes, layout, mult, affine=True)
        self.drop_path_prob = drop_path_prob

    def make_cell(self, C_pp, C_p, C, reduction, reduction_prev):
        kind = "reduce" if reduction else "normal"
        return DartsCell(self.genotype[kind], self.genotype[f"{kind}_concat"], C_pp, C_p, C,
                         reduction, reduction_prev)

    @property
    def drop_path_prob(self) -> float:
        return self._drop_path_prob

    @drop_path_prob.setter
    def drop_path_prob(self, prob: float) -> None:
        """Path dropout of every cell (DARTS, Section 3.3)."""
        self._drop_path_prob = float(prob)
        for cell in self.cells.values():
            cell.drop_path_prob = self._drop_path_prob


class MultiScaleSupernet(MultiScaleNetworkBase):
    """The MS-RANAS search network: every edge of every cell is a mixed op (Eq. 1) whose
    weights are the softmax of ``alpha_normal`` or ``alpha_reduce`` (Eq. 2: they sum to one
    per edge); the same two matrices drive every layer and scale."""

    def __init__(self, op_names: Sequence[str], input_shape: Sequence[int], num_classes: int,
                 layout: MultiScaleLayout, nodes: int = 4, generator: torch.Generator | None = None):
        if nodes < 1:
            raise ConfigError(f"a cell needs at least one intermediate node, got nodes={nodes}")
        self.op_names = tuple(check_op(o) for o in op_names)
        self.nodes = nodes
        self.edges = complete_dag_edges(2, nodes)
        super().__init__(input_shape, num_classes, layout, {"normal": nodes, "reduce": nodes}, affine=False)
        shape = (len(self.edges), len(self.op_names))
        # DARTS initializes alpha as 1e-3 times a standard normal
        self.alpha_normal = nn.Parameter(1e-3 * torch.randn(shape, generator=generator))
        self.alpha_reduce = nn.Parameter(1e-3 * torch.randn(shape, generator=generator))

    def make_cell(self, C_pp, C_p, C, reduction, reduction_prev):
        return DartsSearchCell(self.op_names, self.nodes, C_pp, C_p, C, reduction, reduction_prev, affine=False)

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alpha_normal, self.alpha_reduce]

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def softmax_weights(self) -> dict[str, torch.Tensor]:
        """Eq. 1-2: the softmax over the candidate ops of every edge."""
        return {"normal": self.alpha_normal.softmax(-1), "reduce": self.alpha_reduce.softmax(-1)}

    def cell_kwargs(self):
        weights = self.softmax_weights()
        return {k: {"weights": w} for k, w in weights.items()}
