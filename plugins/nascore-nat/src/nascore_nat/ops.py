"""Operations the published input cells need beyond the core's DARTS set.

Registered in the core's op registry by the plugin's ``register_operations`` hook (when
plugins load, in every process) so that the core's cells, supernets and the ``darts`` space
build them like any other op:

* ``inverted_residual_3x3`` -- the MobileNetV2 bottleneck (Sandler et al., CVPR 2018,
  Table 1): 1x1 expansion by ``t = 6``, ReLU6, 3x3 depthwise (carrying the stride),
  ReLU6, linear 1x1 projection, each followed by batch norm.  The residual shortcut is
  a separate ``skip_connect`` edge of the cell (NAT Fig. 3).
* NAONet's operations (Luo et al., NAO, NeurIPS 2018, Section 4.1 search space):
  ``conv_1x3_3x1`` and ``conv_1x7_7x1`` (factorized convolutions), ``max_pool_2x2``,
  ``avg_pool_2x2`` and ``avg_pool_5x5``.  ``conv_1x1``/``conv_3x3`` and the 3x3 pools
  come from the core.

Every factory follows the core contract ``factory(C_in, C_out, stride, affine)`` and
gives ``ceil(H / stride)`` outputs for odd sizes too.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from nascore.nn.ops import ReLUConvBN

#: MobileNetV2's expansion factor (Sandler et al., Table 2: t = 6 in every stage but the first)
EXPANSION = 6


class InvertedResidual(nn.Sequential):
    """MobileNetV2 bottleneck without its shortcut: expand 1x1 -> depthwise 3x3 -> project 1x1."""

    def __init__(self, C_in, C_out, stride, affine=True, expansion=EXPANSION, kernel_size=3):
        hidden = C_in * expansion
        super().__init__(
            nn.Conv2d(C_in, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden, affine=affine),
            nn.ReLU6(inplace=False),
            nn.Conv2d(hidden, hidden, kernel_size, stride, kernel_size // 2, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden, affine=affine),
            nn.ReLU6(inplace=False),
            nn.Conv2d(hidden, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class FactorizedConv(nn.Sequential):
    """ReLU-conv(1 x k)-BN-ReLU-conv(k x 1)-BN, the stride split over the two convolutions (NAO)."""

    def __init__(self, C_in, C_out, k, stride, affine=True):
        p = k // 2
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, (1, k), stride=(1, stride), padding=(0, p), bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
            nn.ReLU(inplace=False),
            nn.Conv2d(C_out, C_out, (k, 1), stride=(stride, 1), padding=(p, 0), bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class WidePool(nn.Module):
    """k x k max/average pooling for k = 2 (padded bottom/right, as NAO) or odd k (centred);
    a 1x1 ReLU-conv-BN adapts the channels first when ``C_in != C_out`` (as the core's pools)."""

    def __init__(self, kind, k, C_in, C_out, stride, affine=True):
        super().__init__()
        self.preprocess = None if C_in == C_out else ReLUConvBN(C_in, C_out, 1, 1, 0, affine=affine)
        self.pad_br = k % 2 == 0
        padding = 0 if self.pad_br else k // 2
        if kind == "max":
            self.pool = nn.MaxPool2d(k, stride=stride, padding=padding)
        else:
            self.pool = nn.AvgPool2d(k, stride=stride, padding=padding, count_include_pad=False)

    def forward(self, x):
        if self.preprocess is not None:
            x = self.preprocess(x)
        if self.pad_br:
            x = F.pad(x, (0, 1, 0, 1))
        return self.pool(x)


def inverted_residual_3x3(C_in, C_out, stride, affine=True) -> nn.Module:
    return InvertedResidual(C_in, C_out, stride, affine)


def conv_1x3_3x1(C_in, C_out, stride, affine=True) -> nn.Module:
    return FactorizedConv(C_in, C_out, 3, stride, affine)


def conv_1x7_7x1(C_in, C_out, stride, affine=True) -> nn.Module:
    return FactorizedConv(C_in, C_out, 7, stride, affine)


def max_pool_2x2(C_in, C_out, stride, affine=True) -> nn.Module:
    return WidePool("max", 2, C_in, C_out, stride, affine)


def avg_pool_2x2(C_in, C_out, stride, affine=True) -> nn.Module:
    return WidePool("avg", 2, C_in, C_out, stride, affine)


def avg_pool_5x5(C_in, C_out, stride, affine=True) -> nn.Module:
    return WidePool("avg", 5, C_in, C_out, stride, affine)
