"""The candidate operations of cell search spaces, as a registry of factories.

Every factory has the signature ``factory(C_in, C_out, stride, affine) -> nn.Module``
and maps a ``N x C_in x H x W`` tensor to ``N x C_out x ceil(H/stride) x ceil(W/stride)``,
for odd sizes too (digits is 8x8, MNIST 28x28 becomes 7x7 after two reductions).

The set is the NASNet/DARTS one (Liu et al., DARTS, Section 3.1: 3x3 and 5x5 separable
convolutions, 3x3 and 5x5 dilated separable convolutions, 3x3 max and average pooling,
identity and zero), plus ``conv_3x3`` / ``conv_1x1`` (ReLU-conv-BN, used when hand-crafted
VGG/ResNet blocks are written as cells, NAT Section 4.2) and the NAS-Bench-201 operations
(Dong & Yang, NAS-Bench-201, Section 2.1: ``nor_conv_1x1``, ``nor_conv_3x3``,
``avg_pool_3x3``, ``skip_connect``, ``none``).

The builders are registered by name through the ``register_operations`` hook (the built-in
ones by the default plugin :mod:`nascore.builtin.operations`, others by plugins, e.g. NAT's
MobileNetV2 inverted-residual block), when plugins load; :func:`make_op` and
:func:`check_op` resolve names through that registry, so any process can build any
registered operation.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..spaces.common import DARTS_OPS, NB201_OPS  # noqa: F401  (re-exported)

OpFactory = Callable[[int, int, int, bool], nn.Module]

# --------------------------------------------------------------------------- blocks


class ReLUConvBN(nn.Sequential):
    """ReLU -> k x k convolution (no bias) -> batch norm."""

    def __init__(self, C_in, C_out, kernel_size, stride, padding, dilation=1, affine=True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel_size, stride, padding, dilation=dilation, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class DilConv(nn.Sequential):
    """ReLU -> depthwise (dilated) k x k conv -> pointwise 1x1 conv -> batch norm."""

    def __init__(self, C_in, C_out, kernel_size, stride, padding, dilation, affine=True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride, padding, dilation=dilation, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """A separable convolution applied twice, the first one strided (DARTS, Section 3.1)."""

    def __init__(self, C_in, C_out, kernel_size, stride, padding, affine=True):
        super().__init__(
            DilConv(C_in, C_in, kernel_size, stride, padding, 1, affine),
            DilConv(C_in, C_out, kernel_size, 1, padding, 1, affine),
        )


class Zero(nn.Module):
    """The "none" operation: zeros of the output shape (no parameters, no compute)."""

    def __init__(self, C_out, stride):
        super().__init__()
        self.C_out = C_out
        self.stride = stride

    def forward(self, x):
        n, _, h, w = x.shape
        s = self.stride
        return x.new_zeros(n, self.C_out, -(-h // s), -(-w // s))


class FactorizedReduce(nn.Module):
    """Halve the resolution without losing half the pixels: two stride-2 1x1 convolutions,
    the second on the input shifted by one pixel, concatenated (DARTS code release).

    The shifted path pads the bottom/right border, so both paths give ``ceil(H/2)`` for
    odd sizes too; for even sizes this equals dropping the first row and column.
    """

    def __init__(self, C_in, C_out, affine=True):
        super().__init__()
        if C_out < 2:
            raise ConfigError(f"factorized reduce needs at least 2 output channels, got {C_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out - C_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x):
        x = self.relu(x)
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


class Pool(nn.Module):
    """3x3 max or average pooling (padding 1, average excluding padding); a 1x1
    ReLU-conv-BN first adapts the channels when ``C_in != C_out`` (NAS-Bench-201 code)."""

    def __init__(self, kind, C_in, C_out, stride, affine=True):
        super().__init__()
        self.preprocess = None if C_in == C_out else ReLUConvBN(C_in, C_out, 1, 1, 0, affine=affine)
        if kind == "max":
            self.pool = nn.MaxPool2d(3, stride=stride, padding=1)
        else:
            self.pool = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)

    def forward(self, x):
        if self.preprocess is not None:
            x = self.preprocess(x)
        return self.pool(x)


def skip_connect(C_in, C_out, stride, affine=True) -> nn.Module:
    """Identity; a factorized reduce when strided, a 1x1 ReLU-conv-BN on a channel change."""
    if stride == 1 and C_in == C_out:
        return nn.Identity()
    if stride == 1:
        return ReLUConvBN(C_in, C_out, 1, 1, 0, affine=affine)
    if stride != 2:
        raise ConfigError(f"skip_connect supports stride 1 or 2, got {stride}")
    return FactorizedReduce(C_in, C_out, affine=affine)


def zero(C_in, C_out, stride, affine=True) -> nn.Module:
    """The zero op ``none``."""
    return Zero(C_out, stride)


def max_pool_3x3(C_in, C_out, stride, affine=True) -> nn.Module:
    return Pool("max", C_in, C_out, stride, affine)


def avg_pool_3x3(C_in, C_out, stride, affine=True) -> nn.Module:
    return Pool("avg", C_in, C_out, stride, affine)


def sep_conv_3x3(C_in, C_out, stride, affine=True) -> nn.Module:
    return SepConv(C_in, C_out, 3, stride, 1, affine=affine)


def sep_conv_5x5(C_in, C_out, stride, affine=True) -> nn.Module:
    return SepConv(C_in, C_out, 5, stride, 2, affine=affine)


def dil_conv_3x3(C_in, C_out, stride, affine=True) -> nn.Module:
    return DilConv(C_in, C_out, 3, stride, 2, 2, affine=affine)


def dil_conv_5x5(C_in, C_out, stride, affine=True) -> nn.Module:
    return DilConv(C_in, C_out, 5, stride, 4, 2, affine=affine)


def conv_3x3(C_in, C_out, stride, affine=True) -> nn.Module:
    return ReLUConvBN(C_in, C_out, 3, stride, 1, affine=affine)


def conv_1x1(C_in, C_out, stride, affine=True) -> nn.Module:
    return ReLUConvBN(C_in, C_out, 1, stride, 0, affine=affine)


# --------------------------------------------------------------------------- lookup


def _operations():
    from ..plugins import get_operations

    return get_operations()


def op_names() -> tuple[str, ...]:
    """Every registered operation name, in registration order."""
    return _operations().names()


def check_op(name: str) -> str:
    """``name`` if it is a registered operation (``null`` reads as ``none``), else
    :class:`~nascore.errors.UnknownComponentError` (a ConfigError) naming the closest."""
    return _operations().get(name).name


def is_pooling(name: str) -> bool:
    """Whether ``name`` was registered as a parameter-free pooling op."""
    return _operations().get(name).pooling


def make_op(name: str, C_in: int, C_out: int, stride: int = 1, affine: bool = True) -> nn.Module:
    """Build operation ``name`` mapping ``C_in`` to ``C_out`` channels with ``stride``."""
    return _operations().get(name).build(C_in, C_out, stride, affine)
