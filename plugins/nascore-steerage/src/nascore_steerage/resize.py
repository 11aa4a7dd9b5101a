"""Image dimensionality reduction for CNNs: the six Pillow resampling filters (section 4.2.2).

STEERAGE downsamples images (MNIST 28x28 -> 21x21, 14x14; CIFAR-10 32x32 -> 24x24) with
Pillow's lanczos, nearest, bilinear, bicubic, Hamming and box filters, as Chrabaszcz et
al. did for downsampled ImageNet.  Pillow resamples a float ("F" mode) image separably,
one linear pass per axis, so resizing an ``H x W`` channel to ``h x w`` is exactly
``R_h @ X @ R_w^T`` for two fixed matrices.  :func:`resize_matrix` obtains a matrix by
resizing an identity image once through torchvision's PIL path (which calls Pillow);
:class:`ImageResize` then applies the filter to whole batches on any device with two
matrix products -- the same numbers Pillow gives (checked in the tests), without a PIL
round trip per image and as part of the network's forward pass.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn

from nascore.api import ConfigError

#: the six filters, in the paper's order (Table 6/8: "Image DR 1-6")
FILTERS = ("lanczos", "nearest", "bilinear", "bicubic", "hamming", "box")


def _mode(name: str):
    from torchvision.transforms import InterpolationMode

    if name not in FILTERS:
        raise ConfigError(f"unknown image filter {name!r}; valid: {', '.join(FILTERS)}")
    return InterpolationMode(name)


@functools.lru_cache(maxsize=64)
def resize_matrix(size_in: int, size_out: int, name: str) -> np.ndarray:
    """The ``size_out x size_in`` matrix of Pillow's 1-D resampling with filter ``name``.

    Row ``j`` holds the weights output pixel ``j`` gives the input pixels.  Computed by
    resizing the width of a ``size_in x size_in`` identity image (Pillow skips the
    vertical pass when the height is unchanged)."""
    from PIL import Image
    from torchvision.transforms import functional as TF

    if not 1 <= size_out <= size_in:
        raise ConfigError(f"image size {size_out} must be in 1..{size_in} (the input size); DR only shrinks images")
    eye = Image.fromarray(np.eye(size_in, dtype=np.float32))
    out = TF.resize(eye, [size_in, size_out], interpolation=_mode(name))
    return np.asarray(out, dtype=np.float64).T.copy()


def pillow_resize(image: np.ndarray, size: tuple[int, int], name: str) -> np.ndarray:
    """Reference: resize one float H×W channel through torchvision/Pillow directly."""
    from PIL import Image
    from torchvision.transforms import functional as TF

    img = Image.fromarray(np.asarray(image, dtype=np.float32))
    return np.asarray(TF.resize(img, list(size), interpolation=_mode(name)), dtype=np.float64)


class ImageResize(nn.Module):
    """Front-end that resizes N×C×H×W batches to ``size`` with a Pillow filter."""

    def __init__(self, in_size: tuple[int, int], size: tuple[int, int], name: str):
        super().__init__()
        (H, W), (h, w) = in_size, size
        if h > H or w > W:
            raise ConfigError(f"image size {h}x{w} is larger than the input {H}x{W}; choose a size <= the input")
        self.name, self.in_size, self.size = name, (H, W), (h, w)
        self.identity = (h, w) == (H, W)
        self.register_buffer("rows", torch.tensor(resize_matrix(H, h, name), dtype=torch.float32))
        self.register_buffer("cols", torch.tensor(resize_matrix(W, w, name).T.copy(), dtype=torch.float32))

    def forward(self, x):
        if self.identity:
            return x
        return self.rows @ x @ self.cols

    def extra_repr(self) -> str:
        return f"{self.in_size} -> {self.size}, filter={self.name}"
