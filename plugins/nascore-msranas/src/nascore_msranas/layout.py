"""The geometry of a multi-scale network: sizes, channels, reductions, exits and which
(layer, scale) nodes any classifier needs (Section 3.2 of the MS-RANAS paper).

Layer 0 is the *vertical* layer that only creates the scales (a stem at the finest
scale, then one strided convolution per coarser scale); layers ``1 .. layers-1`` hold
cells.  Scale ``s`` has the input's size halved ``s`` times (rounding up, so odd sizes
work: 28 -> 14 -> 7 -> 4); a reduction layer halves every scale again and doubles the
channels (DARTS).  Classifiers read the coarsest scale (MSDNet, which MS-RANAS
follows), so a finer-scale node that no classifier depends on is never built: the
finest scales disappear from the last layers exactly as in MSDNet.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from nascore.api import ConfigError

Node = tuple[int, int]  # (layer, scale)


def halve(size: int) -> int:
    """Spatial size after a stride-2 operation with 'same' padding: ``ceil(size / 2)``."""
    return -(-size // 2)


def max_halvings(size: int) -> int:
    """How many times ``size`` can be halved while every halving starts from >= 2 pixels."""
    count = 0
    while size >= 2:
        size, count = halve(size), count + 1
    return count


def reduction_positions(cell_layers: int, reductions: int) -> tuple[int, ...]:
    """Cell-layer indices of the reduction layers, evenly spread as in DARTS (for two:
    1/3 and 2/3 of the depth)."""
    return tuple(i * cell_layers // (reductions + 1) for i in range(1, reductions + 1))


def _positive(name):
    def check(inst, attribute, value):
        if value < 1:
            raise ConfigError(f"{name} must be >= 1, got {value}")
    return check


@attrs.frozen
class MultiScaleLayout:
    """Geometry of a network with ``scales`` scales and ``layers`` layers for one input size.

    ``size`` is the side (in pixels) of the finest scale after the stem, ``C`` the cell
    channels of the finest scale, multiplied by ``growth`` per coarser scale (MSDNet uses
    1, 2, 4) and by 2 at each reduction; ``exits`` puts a classifier on every cell layer
    (else only on the last).  ``reductions=None`` takes as many as the input allows, at
    most two (DARTS).  The vertical layer outputs ``stem_multiplier * C * growth**s``
    channels at scale ``s`` (1: MSDNet's first layer; DARTS's single-scale stem uses 3).
    """

    size: int
    scales: int = 3
    layers: int = 7
    C: int = 16
    growth: int = 2
    exits: bool = True
    reductions: int | None = None
    stem_multiplier: int = 1

    def __attrs_post_init__(self):
        if self.layers < 2:
            raise ConfigError(
                f"layers must be >= 2 (layer 1 only creates the scales, cells start at layer 2), got {self.layers}")
        for name in ("scales", "C", "growth", "stem_multiplier", "size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        room = max_halvings(self.size)
        if self.scales - 1 > room:
            raise ConfigError(
                f"{self.scales} scales need inputs of at least {2 ** (self.scales - 1)} pixels per side "
                f"(each scale halves the previous one); this input has {self.size}: use scales <= {room + 1}")
        if self.reductions is not None:
            if self.reductions < 0:
                raise ConfigError(f"reductions must be >= 0, got {self.reductions}")
            if self.reductions > room - (self.scales - 1):
                raise ConfigError(
                    f"{self.reductions} reductions with {self.scales} scales shrink a {self.size}-pixel input "
                    f"below one pixel: use reductions <= {room - (self.scales - 1)} or fewer scales")
            if self.reductions > self.cell_layers:
                raise ConfigError(f"{self.reductions} reductions need at least as many cell layers, "
                                  f"got {self.cell_layers} (layers={self.layers})")

    # ---- structure ---------------------------------------------------------------
    @property
    def cell_layers(self) -> int:
        return self.layers - 1

    @property
    def num_reductions(self) -> int:
        if self.reductions is not None:
            return self.reductions
        return min(2, max_halvings(self.size) - (self.scales - 1), self.cell_layers)

    @property
    def reduction_layers(self) -> tuple[int, ...]:
        """Layer indices (1-based cells, layer 0 is vertical) of the reduction layers."""
        return tuple(1 + p for p in reduction_positions(self.cell_layers, self.num_reductions))

    def is_reduction(self, layer: int) -> bool:
        return layer in self.reduction_layers

    def reductions_upto(self, layer: int) -> int:
        return sum(1 for r in self.reduction_layers if r <= layer)

    @property
    def exit_layers(self) -> tuple[int, ...]:
        """Layers with a classifier: every cell layer (Section 4.1), or only the last."""
        return tuple(range(1, self.layers)) if self.exits else (self.layers - 1,)

    @property
    def num_exits(self) -> int:
        return len(self.exit_layers)

    # ---- sizes and channels --------------------------------------------------------
    def spatial(self, layer: int, scale: int) -> int:
        size = self.size
        for _ in range(scale + self.reductions_upto(layer)):
            size = halve(size)
        return size

    def cell_channels(self, layer: int, scale: int) -> int:
        """``C`` of the cell at (layer, scale): per-node channels."""
        return self.C * self.growth ** scale * 2 ** self.reductions_upto(layer)

    def out_channels(self, layer: int, scale: int, multiplier: int) -> int:
        """Channels of the feature map node (layer, scale) outputs."""
        if layer == 0:
            return self.stem_multiplier * self.C * self.growth ** scale
        return multiplier * self.cell_channels(layer, scale)

    # ---- dependencies ----------------------------------------------------------------
    def inputs(self, node: Node) -> list[Node]:
        """Nodes that node (layer, scale) reads: horizontal and previous-previous same-scale
        features and, below the finest scale, the diagonal from the finer scale."""
        layer, scale = node
        if layer == 0:
            return [(0, scale - 1)] if scale > 0 else []
        deps = [(layer - 1, scale), (max(layer - 2, 0), scale)]
        if scale > 0:
            deps.append((layer - 1, scale - 1))
        return deps

    def needed(self, exits: Sequence[int] | None = None) -> set[Node]:
        """Every node the classifiers of ``exits`` (indices into ``exit_layers``; all by
        default) depend on, the coarsest-scale node of their layer included."""
        exits = range(self.num_exits) if exits is None else exits
        todo = [(self.exit_layers[k], self.scales - 1) for k in exits]
        seen: set[Node] = set()
        while todo:
            node = todo.pop()
            if node in seen:
                continue
            seen.add(node)
            todo.extend(self.inputs(node))
        return seen

    def active_scales(self, layer: int) -> list[int]:
        """Scales computed at ``layer`` (those some classifier needs)."""
        needed = self.needed()
        return [s for s in range(self.scales) if (layer, s) in needed]
