"""Shared torch blocks: the NASNet/DARTS and NAS-Bench-201 operations, discrete cells and
networks, and weight-sharing supernets (mixed ops, single-path and DARTS relaxation)."""

from __future__ import annotations

from .cells import DartsCell, NB201Cell, ResNetBasicBlock, drop_path
from .networks import DartsNetwork, NB201Network, image_shape, make_stem
from .ops import DARTS_OPS, NB201_OPS, check_op, is_pooling, make_op, op_names
from .supernet import DartsSearchCell, DartsSupernet, MixedOp, NB201SearchCell, NB201Supernet

__all__ = [
    "DARTS_OPS", "NB201_OPS", "check_op", "is_pooling", "make_op", "op_names",
    "DartsCell", "NB201Cell", "ResNetBasicBlock", "drop_path",
    "DartsNetwork", "NB201Network", "image_shape", "make_stem",
    "MixedOp", "DartsSearchCell", "NB201SearchCell", "DartsSupernet", "NB201Supernet",
]
