"""Stacked networks built from cells, for any image task (1x8x8 digits to 3x32x32 CIFAR).

``DartsNetwork`` is the DARTS evaluation network (DARTS, Section 3.2: stem, ``layers``
cells with reduction cells at 1/3 and 2/3 of the depth, global pooling, classifier);
``NB201Network`` is the NAS-Bench-201 macro skeleton (Section 2.1 of its paper: stem,
three stages of ``N`` cells separated by residual reduction blocks, BN-ReLU, pooling,
classifier).  Both keep the published design for inputs up to 32 pixels; larger inputs
get a strided stem (one stride-2 convolution per halving down to 32 pixels or less).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from torch import nn

from ..errors import ConfigError
from .cells import DartsCell, Edge, NB201Cell, ResNetBasicBlock


def image_shape(task_or_shape) -> tuple[int, int, int]:
    """``(C, H, W)`` of an image task (or of a shape tuple); ConfigError for tabular tasks."""
    shape = getattr(task_or_shape, "input_shape", task_or_shape)
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3:
        name = getattr(task_or_shape, "name", "the task")
        raise ConfigError(f"cell networks need image inputs (C, H, W); {name} has input shape {shape}")
    return shape  # type: ignore[return-value]


def stem_halvings(size: int, target: int = 32) -> int:
    """How many stride-2 stem convolutions bring ``size`` to at most ``target`` pixels."""
    return max(0, math.ceil(math.log2(size / target))) if size > target else 0


def make_stem(C_in: int, C_out: int, size: int) -> nn.Sequential:
    """3x3 conv + BN (the CIFAR stem of DARTS and NAS-Bench-201), with ReLU-separated
    stride-2 convolutions in front for inputs larger than 32 pixels."""
    halvings = stem_halvings(size)
    layers: list[nn.Module] = []
    c = C_in
    for i in range(max(1, halvings)):
        if i:
            layers.append(nn.ReLU(inplace=False))
        layers += [nn.Conv2d(c, C_out, 3, stride=2 if i < halvings else 1, padding=1, bias=False),
                   nn.BatchNorm2d(C_out)]
        c = C_out
    return nn.Sequential(*layers)


def reduction_layers(layers: int) -> tuple[int, int]:
    """Indices of the two reduction cells among ``layers`` cells (1/3 and 2/3 of the depth)."""
    return layers // 3, 2 * layers // 3


class DartsNetwork(nn.Module):
    """A network of stacked DARTS cells (the ``NetworkCIFAR`` design of DARTS, Section 3.2).

    ``genotype`` holds ``normal`` / ``reduce`` edge lists ``[(op, from, to), ...]`` and the
    ``normal_concat`` / ``reduce_concat`` node lists.  Channels double at each reduction
    cell; ``drop_path_prob`` drops non-identity edges while training (DARTS, Section 3.3).
    """

    def __init__(self, genotype: Mapping, input_shape: Sequence[int], num_classes: int, C: int = 16,
                 layers: int = 8, stem_multiplier: int = 3, drop_path_prob: float = 0.0):
        super().__init__()
        C_in, H, W = image_shape(input_shape)
        if layers < 1 or C < 1:
            raise ConfigError(f"a DARTS network needs layers >= 1 and C >= 1, got layers={layers}, C={C}")
        C_curr = stem_multiplier * C
        self.stem = make_stem(C_in, C_curr, max(H, W))
        C_pp, C_p, C_curr = C_curr, C_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        reductions = reduction_layers(layers)
        for i in range(layers):
            reduction = i in reductions
            if reduction:
                C_curr *= 2
            kind = "reduce" if reduction else "normal"
            cell = DartsCell(genotype[kind], genotype[f"{kind}_concat"], C_pp, C_p, C_curr, reduction, reduction_prev)
            self.cells.append(cell)
            C_pp, C_p = C_p, cell.multiplier * C_curr
            reduction_prev = reduction
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_p, num_classes)
        self.drop_path_prob = drop_path_prob

    @property
    def drop_path_prob(self) -> float:
        return self._drop_path_prob

    @drop_path_prob.setter
    def drop_path_prob(self, prob: float) -> None:
        """Set the path-dropout probability of every cell (DARTS raises it linearly over epochs)."""
        self._drop_path_prob = float(prob)
        for cell in self.cells:
            cell.drop_path_prob = self._drop_path_prob

    def forward(self, x):
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.global_pooling(s1).flatten(1))


def nb201_stages(C: int, N: int) -> list[tuple[int, bool]]:
    """``(channels, is_reduction)`` of every block of the NAS-Bench-201 skeleton:
    N cells at C, a reduction to 2C, N cells, a reduction to 4C, N cells."""
    blocks = [(C, False)] * N + [(2 * C, True)] + [(2 * C, False)] * N
    return blocks + [(4 * C, True)] + [(4 * C, False)] * N


class NB201Network(nn.Module):
    """The NAS-Bench-201 network (``C`` = 16 and ``N`` = 5 in the benchmark) for one cell
    given as 6 edges ``[(op, from, to), ...]``."""

    def __init__(self, edges: Sequence[Edge], input_shape: Sequence[int], num_classes: int,
                 C: int = 16, N: int = 5):
        super().__init__()
        C_in, H, W = image_shape(input_shape)
        if N < 1 or C < 1:
            raise ConfigError(f"a NAS-Bench-201 network needs N >= 1 and C >= 1, got N={N}, C={C}")
        self.stem = make_stem(C_in, C, max(H, W))
        blocks, C_prev = [], C
        for C_curr, reduction in nb201_stages(C, N):
            blocks.append(ResNetBasicBlock(C_prev, C_curr, 2) if reduction else NB201Cell(edges, C_curr))
            C_prev = C_curr
        self.cells = nn.ModuleList(blocks)
        self.lastact = nn.Sequential(nn.BatchNorm2d(C_prev), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)

    def forward(self, x):
        x = self.stem(x)
        for block in self.cells:
            x = block(x)
        return self.classifier(self.global_pooling(self.lastact(x)).flatten(1))
