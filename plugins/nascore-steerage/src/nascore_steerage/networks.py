"""The networks STEERAGE's spaces build: DR front-end -> features -> feed-forward classifier.

Every network is a :class:`SteerageNet`: a fitted, frozen dimensionality-reduction
``front`` (:mod:`.dimred` for FFNNs, :mod:`.resize` for CNNs; buffers only, no trainable
parameters), a convolutional ``features`` stack (``nn.Identity`` for FFNNs) and a
:class:`~.mlp.FeedForward` ``classifier``.  Convolutions and linear layers are masked
and quantize their weights at inference (:mod:`.layers`), so SCANN and NeST can edit
them and every eval-mode accuracy is that of the quantized network.

``growth_pairs()`` lists the (producer conv, its BatchNorm or None, consumer) triples in
which NeST may add feature maps: a new output channel of the producer only feeds the
consumer, so adding one changes nothing else.
"""

from __future__ import annotations

from torch import nn

from .layers import MaskedConv2d, set_weight_bits
from .mlp import FeedForward


class SteerageNet(nn.Module):
    """``classifier(flatten(features(front(x))))``."""

    def __init__(self, front: nn.Module, features: nn.Module, classifier: FeedForward,
                 pairs: tuple = (), weight_bits: int = 32):
        super().__init__()
        self.front = front
        self.features = features
        self.classifier = classifier
        self._pairs = tuple(pairs)
        set_weight_bits(self, weight_bits)

    def forward(self, x):
        return self.classifier(self.features(self.front(x)).flatten(1))

    def growth_pairs(self) -> list[tuple[str, str | None, str]]:
        """Module paths ``(producer, norm or None, consumer)`` for feature-map growth."""
        return list(self._pairs)


def _pool(kind: str, side: int) -> nn.Module:
    """2x2 pooling that keeps a partial last window on odd sides (ceil mode): Table 6's
    FC1 ranges are conv2 x s^2 for s = ceil(ceil(side/2) - 2, /2) (14 -> 3, 21 -> 5, 28 -> 6)."""
    if side < 2:
        return nn.Identity()
    return nn.MaxPool2d(2, ceil_mode=True) if kind == "max" else nn.AvgPool2d(2, ceil_mode=True)


def _pooled(side: int) -> int:
    return (side + 1) // 2 if side >= 2 else side


def lenet5_features(channels: int, side: int, kernel: int, conv1: int, conv2: int,
                    pool1: str, pool2: str) -> tuple[nn.Sequential, int]:
    """LeNet-5's convolutional part as in the PyTorch reference: conv1 keeps the size
    (padding k//2), pool, conv2 without padding (with padding when the map is too
    small for a valid convolution), pool (ceil mode).  Returns the stack and its
    flattened width."""
    s1 = side
    p1 = _pool(pool1, s1)
    s1p = _pooled(s1)
    pad2 = 0 if s1p - kernel + 1 >= 2 else kernel // 2
    s2 = s1p + 2 * pad2 - kernel + 1
    p2 = _pool(pool2, s2)
    s2p = _pooled(s2)
    stack = nn.Sequential(
        MaskedConv2d(channels, conv1, kernel, padding=kernel // 2), nn.ReLU(), p1,
        MaskedConv2d(conv1, conv2, kernel, padding=pad2), nn.ReLU(), p2,
    )
    return stack, conv2 * s2p * s2p


LENET5_PAIRS = (("features.0", None, "features.3"), ("features.3", None, "classifier"))


def classic_lenet5(front: nn.Module, channels: int, side: int, classes: int) -> SteerageNet:
    """The baseline LeNet-5 of Table 7 (6 and 16 5x5 filters, max pooling, 120-84 FC;
    61,706 weights on 28x28 MNIST)."""
    features, width = lenet5_features(channels, side, 5, 6, 16, "max", "max")
    return SteerageNet(front, features, FeedForward([width, 120, 84, classes]), LENET5_PAIRS)


# --------------------------------------------------------------------------- ResNet


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (He et al., 2016)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = MaskedConv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = MaskedConv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = _shortcut(cin, cout, stride)

    def forward(self, x):
        y = self.bn1(self.conv1(x)).relu()
        return (self.bn2(self.conv2(y)) + self.shortcut(x)).relu()

    def pairs(self, prefix: str):
        return [(f"{prefix}.conv1", f"{prefix}.bn1", f"{prefix}.conv2")]


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 residual block, bottleneck width ``cout // 4``, used from 50
    layers up (section 5.2.2)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        width = max(cout // 4, 1)
        self.conv1 = MaskedConv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = MaskedConv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = MaskedConv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = _shortcut(cin, cout, stride)

    def forward(self, x):
        y = self.bn1(self.conv1(x)).relu()
        y = self.bn2(self.conv2(y)).relu()
        return (self.bn3(self.conv3(y)) + self.shortcut(x)).relu()

    def pairs(self, prefix: str):
        return [(f"{prefix}.conv1", f"{prefix}.bn1", f"{prefix}.conv2"),
                (f"{prefix}.conv2", f"{prefix}.bn2", f"{prefix}.conv3")]


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(MaskedConv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))


def resnet_features(channels: int, stem: int, widths, blocks, pooling: str, bottleneck: bool):
    """CIFAR-style ResNet trunk: 3x3 stem, four stages (strides 1, 2, 2, 2) of
    ``blocks[i]`` residual blocks with ``widths[i]`` filters, global max/avg pooling.
    Returns the stack, its output width and the NeST growth pairs."""
    block = Bottleneck if bottleneck else BasicBlock
    layers = [MaskedConv2d(channels, stem, 3, padding=1, bias=False), nn.BatchNorm2d(stem), nn.ReLU()]
    pairs, cin = [], stem
    for s, (width, count) in enumerate(zip(widths, blocks)):
        stage = []
        for b in range(count):
            stage.append(block(cin, width, 2 if (s > 0 and b == 0) else 1))
            pairs += stage[-1].pairs(f"features.{3 + s}.{b}")
            cin = width
        layers.append(nn.Sequential(*stage))
    layers.append(nn.AdaptiveMaxPool2d(1) if pooling == "max" else nn.AdaptiveAvgPool2d(1))
    return nn.Sequential(*layers), cin, pairs
