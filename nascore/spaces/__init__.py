"""Built-in cell search spaces shared by several plugins: NAS-Bench-201 and DARTS.

Importing this package loads no torch; networks and supernets are built on demand.
"""

from __future__ import annotations

from .common import DARTS_OPS, NB201_EDGES, NB201_OPS
from .darts import DartsSpace, parse_genotype
from .nb201 import NB201Space

__all__ = ["DARTS_OPS", "NB201_EDGES", "NB201_OPS", "DartsSpace", "NB201Space", "parse_genotype"]
