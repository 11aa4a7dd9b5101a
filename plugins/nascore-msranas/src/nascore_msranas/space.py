"""The ``msranas`` search space: DARTS cells seen through the MS-RANAS multi-scale,
multi-exit network.

The genome is exactly the core ``darts`` space's (a normal and a reduction cell, two
``(input, op)`` edges per intermediate node), and so are the architectures: they carry
the space name ``darts``, so the cells MS-RANAS finds go unchanged to any component that
takes DARTS cells (NAT, TNAS, the ``darts`` space itself).  What this space adds are the
parameters of the network :meth:`build` makes -- scales, layers, exits, channel growth,
reductions: the final network of Section 4.4 (three scales, seven layers, an exit on
every layer but the first).  A run's ``[space]`` table therefore carries the final
network's configuration, and ``build`` + ``best.pt`` give back the trained network.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from nascore.api import in_range, param
from nascore.api import DartsSpace


@attrs.frozen(slots=False)
class MultiScaleSpace(DartsSpace):
    """DARTS cells in the MS-RANAS multi-scale network with early exits (Sections 3.2, 4.4)."""

    name: ClassVar[str] = "darts"  # the genome is the darts space's: architectures are darts architectures

    layers: int = param(7, help="layers of the network: the first creates the scales, each other holds cells "
                                "(7 in Section 4.4)", validator=in_range(2))
    scales: int = param(3, help="feature scales, each half the size of the previous (3 in the paper)",
                        validator=in_range(1))
    exits: bool = param(True, help="a classifier on every layer but the first (else only on the last)")
    growth: int = param(2, help="channel factor from one scale to the next coarser (MSDNet: 2)",
                        validator=in_range(1))
    reductions: int | None = param(None, help="reduction layers (halve every scale, double channels); "
                                              "none: as many as the input allows, at most 2",
                                   validator=in_range(0))

    def layout(self, input_shape):
        """The :class:`~nascore_msranas.layout.MultiScaleLayout` of built networks for an
        image input shape ``(C, H, W)``; ConfigError when the input is too small."""
        from .network import make_layout

        return make_layout(input_shape, scales=self.scales, layers=self.layers, C=self.C, growth=self.growth,
                           exits=self.exits, reductions=self.reductions)

    def build(self, arch, task):
        """A :class:`~nascore_msranas.network.MultiScaleNetwork` of ``arch``'s cells; its
        forward returns one logits tensor per exit (a list) when ``exits`` is on."""
        from nascore.nn.networks import image_shape

        from .network import MultiScaleNetwork

        shape = image_shape(task)
        return MultiScaleNetwork(self.to_genotype(arch, form="edges"), shape, task.num_classes,
                                 self.layout(shape), drop_path_prob=self.drop_path)
