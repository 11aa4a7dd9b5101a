"""Operation names and helpers of the built-in cell spaces (importing it loads no torch)."""

from __future__ import annotations

import numpy as np

#: DARTS's candidate operations, in the order of its code release ("none" first)
DARTS_OPS: tuple[str, ...] = (
    "none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
    "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
)
#: NAS-Bench-201's five operations, in the benchmark's order
NB201_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: the 6 edges ``(from, to)`` of the NAS-Bench-201 cell in the order of its strings
NB201_EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))


def as_numpy(x) -> np.ndarray:
    """A torch tensor (detached, moved to the CPU) or an array-like as a NumPy array."""
    if hasattr(x, "detach"):  # a torch tensor; checked by duck type so NumPy callers never import torch
        x = x.detach().cpu().numpy()
    return np.asarray(x)
