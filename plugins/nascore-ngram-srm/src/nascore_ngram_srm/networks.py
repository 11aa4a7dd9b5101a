"""torch modules of the ``metaqnn`` chains and the ``resnet-chain`` residual networks."""

from __future__ import annotations

import torch
from torch import nn


def _conv(cin: int, cout: int, kernel: int, stride: int = 1, *, batch_norm: bool = True) -> list[nn.Module]:
    padding = "same" if stride == 1 else kernel // 2
    mods: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=not batch_norm)]
    if batch_norm:
        mods.append(nn.BatchNorm2d(cout))
    return mods


def build_chain(plan: list[tuple], num_classes: int, *, batch_norm: bool, dropout: float) -> nn.Sequential:
    """A MetaQNN chain from a space's plan: conv(-BN)-ReLU, max pooling, GAP, FC-ReLU
    (-dropout), then a linear classifier."""
    mods: list[nn.Module] = []
    flat = False
    for layer, shape_in, shape_out in plan:
        t = layer["type"]
        if t == "conv":
            mods += _conv(shape_in[0], shape_out[0], layer["kernel"], batch_norm=batch_norm) + [nn.ReLU(inplace=True)]
        elif t == "pool":
            mods.append(nn.MaxPool2d(layer["size"], layer["stride"]))
        elif t == "gap":
            mods += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
            flat = True
        else:
            if not flat:
                mods.append(nn.Flatten())
                flat = True
            fin = 1
            for s in shape_in:
                fin *= s
            mods += [nn.Linear(fin, shape_out[0]), nn.ReLU(inplace=True)]
            if dropout > 0:
                mods.append(nn.Dropout(dropout))
    if not flat:
        mods.append(nn.Flatten())
    final = plan[-1][2] if plan else None
    fin = 1
    for s in final:
        fin *= s
    mods.append(nn.Linear(fin, num_classes))
    return nn.Sequential(*mods)


class ResidualBlock(nn.Module):
    """Three k x k convolutions with batch normalization and a summation with the
    (identity or 1x1-projected) input: the ResNet block of Section 4.2."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            *_conv(cin, cout, kernel, stride), nn.ReLU(inplace=True),
            *_conv(cout, cout, kernel), nn.ReLU(inplace=True),
            *_conv(cout, cout, kernel),
        )
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(*_conv(cin, cout, 1, stride))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


def build_residual_chain(cin: int, stem: int, blocks: list[dict], num_classes: int) -> nn.Sequential:
    """Stem conv3x3-BN-ReLU, the residual blocks, global average pooling, linear."""
    mods: list[nn.Module] = [*_conv(cin, stem, 3), nn.ReLU(inplace=True)]
    c = stem
    for b in blocks:
        mods.append(ResidualBlock(c, b["channels"], b["kernel"], b["stride"]))
        c = b["channels"]
    mods += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)]
    return nn.Sequential(*mods)
