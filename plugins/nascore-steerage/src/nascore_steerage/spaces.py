"""STEERAGE's hyperparameter search spaces: ``ffnn`` (Table 2), ``lenet5`` (Table 6) and
``resnet`` (Table 8).

A genome is a vector of hyperparameters with a lower bound, an upper bound and a step
(section 4.3), including the DR method and its ratio (FFNN) or the image filter and
image size (CNNs), and the inference bit width.  Ranges follow the paper's tables and
scale with the task's input: the FFNN DR ratio is capped at the number of input features
(at least one feature remains), the CNN image sizes are the paper's fractions of the
input side (MNIST 28 -> 14, 21, 28; CIFAR-10 32 -> 24, 32) and LeNet-5's FC ranges are
Table 6's column for the same fraction, scaled by the number of input features.

Where dimensionality reduction lives: ``build(arch, task)`` fits the DR transform on
``task.train.X`` only (never on valid/test) and returns a network whose first module is
the fitted transform (buffers, no trainable parameters), so every evaluator, trainer and
compressor sees one ordinary ``nn.Module`` from raw task inputs to logits, and saved
weights carry the fitted transform.  Fitted transforms are cached per training tensor.
"""

from __future__ import annotations

import copy
import math
import weakref
from typing import ClassVar

import attrs

import nascore
from nascore.api import Choice, Float, Int, SearchSpace
from nascore.api import ConfigError
from nascore.api import in_range, one_of

FFNN_METHODS = (
    "gaussian-rp", "normal-rp", "sign-rp", "sparse-rp", "pca", "poly-kpca", "rbf-kpca",
    "factor-analysis", "isomap", "ica", "spectral",
)
IMAGE_FILTERS = ("lanczos", "nearest", "bilinear", "bicubic", "hamming", "box")
BITS = (4, 8, 16, 32)

#: Table 6: FC1/FC2/FC3 neuron ranges of LeNet-5 for MNIST images of side 14, 21, 28
TABLE6_FC = {14: ((135, 180), (60, 120), (40, 85)), 21: ((375, 500), (100, 220), (50, 120)),
             28: ((540, 720), (100, 250), (50, 150))}
#: Table 8: filters per stage (low, step); the paper's highs (98, 196, 392, 784) are not
#: on their step grids, so every range has the six values low .. low + 5 * step
TABLE8_FILTERS = (("conv1", 56, 8), ("conv2_x", 56, 8), ("conv3_x", 112, 16), ("conv4_x", 224, 32),
                  ("conv5_x", 448, 64))

_FRONT_CACHE: dict = {}


def _grid(name: str, low, high, step) -> None:
    """ConfigError unless ``low <= high`` and ``step`` divides ``high - low``."""
    if low > high:
        raise ConfigError(f"{name}: low {low} > high {high}")
    if step <= 0:
        raise ConfigError(f"{name}: step must be positive, got {step}")
    n = (high - low) / step
    if abs(n - round(n)) > 1e-6:
        raise ConfigError(f"{name}: step {step} does not divide the range {low}..{high}")


def _subset(name: str, values, allowed) -> None:
    if not values:
        raise ConfigError(f"{name} must not be empty; choose from {', '.join(map(str, allowed))}")
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ConfigError(f"{name}: {bad[0]!r} is not one of {', '.join(map(str, allowed))}")
    if len(set(values)) != len(values):
        raise ConfigError(f"{name} lists a value twice: {list(values)}")


def cached_front(key: tuple, tensor, make):
    """A copy of the front-end fitted by ``make()`` for training tensor ``tensor``;
    fitted once per tensor (a weak reference detects a freed tensor)."""
    full = (id(tensor), *key)
    hit = _FRONT_CACHE.get(full)
    if hit is None or hit[0]() is not tensor:
        if len(_FRONT_CACHE) > 64:
            _FRONT_CACHE.clear()
        hit = (weakref.ref(tensor), make())
        _FRONT_CACHE[full] = hit
    return copy.deepcopy(hit[1])


class _SteerageSpace(SearchSpace):
    """Shared parts: parameter validation, costs with masks and model size in bits."""

    def __attrs_post_init__(self):
        try:
            self.dimensions()
        except ValueError as exc:
            raise ConfigError(f"space {self.name!r}: {exc}") from None

    def metrics(self, arch, model, task) -> dict:
        """Recorded with every ``train`` evaluation: params/FLOPs with pruned weights
        removed, and ``model_bits``, the weight storage at the genome's bit width."""
        from nascore.nn.quant import model_size_bits

        from .layers import model_cost

        return {**model_cost(model, task.input_shape), "model_bits": model_size_bits(model, arch["quant_bits"])}

    def cost(self, arch, task) -> dict:
        """``params``/``flops`` of the built network (pruned weights removed) and
        ``model_bits``: its weight storage at the genome's bit width."""
        from nascore.nn.quant import model_size_bits

        from .layers import model_cost

        model = self.build(arch, task)
        out = model_cost(model, task.input_shape)
        out["model_bits"] = model_size_bits(model, arch["quant_bits"])
        return out

    def _check_image_task(self, task) -> None:
        want = (self.channels, self.input_size, self.input_size)
        got = tuple(task.input_shape)
        if task.kind != "image" or got != want:
            raise ConfigError(
                f"space {self.name!r} is set up for {want[0]}x{want[1]}x{want[2]} images but task "
                f"{task.name!r} has input {got} ({task.kind}); set [space] input_size and channels to match"
            )

    def _image_front(self, arch, task):
        from .resize import ImageResize

        S, s = self.input_size, arch["image_size"]
        return ImageResize((S, S), (s, s), arch["image_filter"])


def _image_sizes(sizes, input_size: int, fractions) -> list[int]:
    if not sizes:
        return sorted({max(1, round(f * input_size)) for f in fractions})
    bad = [s for s in sizes if not 1 <= s <= input_size]
    if bad:
        raise ConfigError(f"image size {bad[0]} is larger than the input ({input_size}) or < 1; "
                          f"image DR only shrinks images")
    return sorted(set(int(s) for s in sizes))


# --------------------------------------------------------------------------- FFNN (Table 2)


@attrs.define(slots=False, kw_only=True)
class FFNNSpace(_SteerageSpace):
    """Feed-forward networks with a DR front-end and quantized inference (Table 2)."""

    name: ClassVar[str] = "ffnn"
    conformance: ClassVar[dict] = {"params": {"features": 64, "neurons_low": 8, "neurons_high": 32,
                                              "neurons_step": 8, "max_layers": 3}}

    features: int = nascore.param(64, help="input features of the task (caps the DR ratio so >= 1 feature remains)",
                                  validator=in_range(1))
    max_layers: int = nascore.param(6, help="most hidden layers (Table 2: 1-6)", validator=in_range(1))
    neurons_low: int = nascore.param(50, help="fewest neurons per hidden layer", validator=in_range(1))
    neurons_high: int = nascore.param(600, help="most neurons per hidden layer", validator=in_range(1))
    neurons_step: int = nascore.param(25, help="step of the neurons per layer", validator=in_range(1))
    dr_methods: list[str] = nascore.param(factory=lambda: list(FFNN_METHODS),
                                          help="DR methods searched (section 4.2.1)")
    ratio_low: float = nascore.param(1.0, help="smallest DR (feature compression) ratio", validator=in_range(1.0))
    ratio_high: float = nascore.param(20.0, help="largest DR ratio (capped at the number of features)")
    ratio_step: float = nascore.param(0.1, help="step of the DR ratio", validator=in_range(0.0, low_open=True))
    bits: list[int] = nascore.param(factory=lambda: list(BITS), help="inference bit widths searched")
    fit_samples: int = nascore.param(1000, help="training rows kernel PCA, Isomap and spectral DR are fitted on",
                                     validator=in_range(10))
    seed: int = nascore.param(0, help="seed of the random projections and DR fits")

    def dimensions(self):
        _grid("neurons", self.neurons_low, self.neurons_high, self.neurons_step)
        _grid("DR ratio", self.ratio_low, self.ratio_high, self.ratio_step)
        _subset("dr_methods", self.dr_methods, FFNN_METHODS)
        _subset("bits", self.bits, BITS)
        if self.ratio_low > self.features:
            raise ConfigError(f"DR ratio {self.ratio_low} leaves < 1 of the {self.features} features; "
                              f"ratio_low must be <= {self.features}")
        cap = min(self.ratio_high, float(self.features))
        high = self.ratio_low + math.floor((cap - self.ratio_low) / self.ratio_step + 1e-9) * self.ratio_step
        dims = [Int("layers", 1, self.max_layers)]
        dims += [Int(f"n{i}", self.neurons_low, self.neurons_high, self.neurons_step)
                 for i in range(1, self.max_layers + 1)]
        dims += [Choice("dr_method", self.dr_methods),
                 Float("dr_ratio", self.ratio_low, round(high, 10), self.ratio_step), Choice("quant_bits", self.bits)]
        return dims

    def is_active(self, genome, name):
        return not (name[0] == "n" and name[1:].isdigit() and int(name[1:]) > genome["layers"])

    def hidden(self, arch) -> list[int]:
        return [arch[f"n{i}"] for i in range(1, arch["layers"] + 1)]

    def reduced(self, arch) -> int:
        from .dimred import reduced_features

        return reduced_features(self.features, arch["dr_ratio"])

    def tokens(self, arch):
        return ([f"DR-{arch['dr_method']}-{self.reduced(arch)}"] + [f"FC-{n}" for n in self.hidden(arch)]
                + [f"Q{arch['quant_bits']}"])

    def build(self, arch, task):
        from .dimred import fit_reduction
        from .mlp import FeedForward
        from .networks import SteerageNet

        if task.kind != "tabular" or tuple(task.input_shape) != (self.features,):
            raise ConfigError(f"space 'ffnn' is set up for {self.features} features but task {task.name!r} has "
                              f"input {tuple(task.input_shape)} ({task.kind}); set [space] features (and flatten "
                              f"image datasets)")
        k = self.reduced(arch)
        method = arch["dr_method"]
        front = cached_front((method, k, self.seed, self.fit_samples), task.train.X,
                             lambda: fit_reduction(method, task.train.X, k, seed=self.seed,
                                                   fit_samples=self.fit_samples))
        classifier = FeedForward([k, *self.hidden(arch), task.num_classes])
        import torch.nn as nn

        return SteerageNet(front, nn.Identity(), classifier, weight_bits=arch["quant_bits"])


# --------------------------------------------------------------------------- LeNet-5 (Table 6)


def lenet5_fc_ranges(size: int, input_size: int, channels: int = 1):
    """FC1-FC3 neuron ranges for images of side ``size``: Table 6's column for the same
    fraction of the input side, scaled by the ratio of input features."""
    ref = min(TABLE6_FC, key=lambda p: (abs(p / 28 - size / input_size), -p))
    scale = size * size * channels / (ref * ref)
    return tuple((max(1, round(lo * scale)), max(1, round(hi * scale))) for lo, hi in TABLE6_FC[ref])


@attrs.define(slots=False, kw_only=True)
class LeNet5Space(_SteerageSpace):
    """LeNet-5 variants with an image-resize front-end and quantized inference (Table 6).

    ``fc1``..``fc3`` are levels 0..fc_levels inside the FC range of the chosen image
    size (the range moves with the size, Table 6); tokens show the neuron counts.

    Reading of Table 6's FC1 (``fc_reading``): its ranges (14: 135-180, 21: 375-500,
    28: 540-720) are exactly conv2's 15-20 filters times s^2 for the 3x3-kernel maps
    after the second pooling (s = 3, 5, 6), and the baseline's "400 neurons" is
    LeNet-5's flattened 16x5x5 conv output.  So by default (``"flatten"``) FC1 *is* the
    flattened conv output -- set by conv2, the kernel and the image size, not searched
    (``fc1`` inactive) -- and the classifier's hidden layers are FC2 and FC3.  This puts
    the paper's 131.1k-weight 28x28 GS network inside the space; ``"hidden"`` (FC1 an
    extra hidden layer of 540-720 neurons) cannot go below ~200k weights at 28x28."""

    name: ClassVar[str] = "lenet5"
    conformance: ClassVar[dict] = {"params": {"input_size": 8}}

    input_size: int = nascore.param(28, help="side of the task's square images (MNIST: 28)", validator=in_range(1))
    channels: int = nascore.param(1, help="image channels of the task", validator=in_range(1))
    image_sizes: list[int] = nascore.param(factory=list,
                                           help="image sides searched; empty: 1/2, 3/4 and all of input_size")
    filters: list[str] = nascore.param(factory=lambda: list(IMAGE_FILTERS), help="image DR filters (section 4.2.2)")
    kernels: list[int] = nascore.param(factory=lambda: [3, 5], help="convolution kernel sizes")
    conv1_low: int = nascore.param(5, help="fewest conv1 filters", validator=in_range(1))
    conv1_high: int = nascore.param(10, help="most conv1 filters", validator=in_range(1))
    conv2_low: int = nascore.param(15, help="fewest conv2 filters", validator=in_range(1))
    conv2_high: int = nascore.param(20, help="most conv2 filters", validator=in_range(1))
    fc_levels: int = nascore.param(8, help="levels per FC range (fc = low + level/fc_levels * (high-low))",
                                   validator=in_range(1))
    bits: list[int] = nascore.param(factory=lambda: list(BITS), help="inference bit widths searched")
    fc_reading: str = nascore.param("flatten", help="Table 6's FC1: 'flatten' (the flattened conv output, not "
                                                    "searched) or 'hidden' (an extra hidden layer)",
                                    validator=one_of("flatten", "hidden"))

    def sizes(self) -> list[int]:
        return _image_sizes(self.image_sizes, self.input_size, (0.5, 0.75, 1.0))

    def dimensions(self):
        _grid("conv1 filters", self.conv1_low, self.conv1_high, 1)
        _grid("conv2 filters", self.conv2_low, self.conv2_high, 1)
        _subset("filters", self.filters, IMAGE_FILTERS)
        _subset("bits", self.bits, BITS)
        if not self.kernels or any(k < 1 or k % 2 == 0 for k in self.kernels):
            raise ConfigError(f"kernels must be odd sizes >= 1, got {self.kernels}")
        return [Choice("image_filter", self.filters), Choice("image_size", self.sizes()),
                Choice("kernel", sorted(set(self.kernels))), Int("conv1", self.conv1_low, self.conv1_high),
                Choice("pool1", ("max", "avg")), Int("conv2", self.conv2_low, self.conv2_high),
                Choice("pool2", ("max", "avg")), Int("fc1", 0, self.fc_levels), Int("fc2", 0, self.fc_levels),
                Int("fc3", 0, self.fc_levels), Choice("quant_bits", self.bits)]

    def is_active(self, genome, name):
        if name == "fc1":
            return self.fc_reading == "hidden"
        return name != "image_filter" or genome["image_size"] < self.input_size

    def fc_sizes(self, arch) -> list[int]:
        """The classifier's hidden layers: FC2, FC3 (``flatten``) or FC1-FC3 (``hidden``)."""
        ranges = lenet5_fc_ranges(arch["image_size"], self.input_size, self.channels)
        first = 0 if self.fc_reading == "hidden" else 1
        return [lo + round(arch[f"fc{i + 1}"] * (hi - lo) / self.fc_levels)
                for i, (lo, hi) in enumerate(ranges) if i >= first]

    def tokens(self, arch):
        k, s = arch["kernel"], arch["image_size"]
        front = [f"RESIZE-{arch['image_filter']}-{s}"] if s < self.input_size else [f"INPUT-{s}"]
        return (front + [f"C{k}-{arch['conv1']}", f"{arch['pool1'].upper()}POOL2", f"C{k}-{arch['conv2']}",
                         f"{arch['pool2'].upper()}POOL2"] + [f"FC-{n}" for n in self.fc_sizes(arch)]
                + [f"Q{arch['quant_bits']}"])

    def build(self, arch, task):
        from .mlp import FeedForward
        from .networks import LENET5_PAIRS, SteerageNet, lenet5_features

        self._check_image_task(task)
        features, width = lenet5_features(self.channels, arch["image_size"], arch["kernel"], arch["conv1"],
                                          arch["conv2"], arch["pool1"], arch["pool2"])
        classifier = FeedForward([width, *self.fc_sizes(arch), task.num_classes])
        return SteerageNet(self._image_front(arch, task), features, classifier, LENET5_PAIRS,
                           weight_bits=arch["quant_bits"])

    def baseline(self, task, size: int | None = None, filter: str = "lanczos"):
        """The classic LeNet-5 (Table 7 baseline) behind the same resize front-end."""
        from .networks import classic_lenet5
        from .resize import ImageResize

        self._check_image_task(task)
        S = self.input_size
        s = size or S
        return classic_lenet5(ImageResize((S, S), (s, s), filter), self.channels, s, task.num_classes)


# --------------------------------------------------------------------------- ResNet (Table 8)


@attrs.define(slots=False, kw_only=True)
class ResNetSpace(_SteerageSpace):
    """ResNet variants (Table 8): image DR, basic blocks per stage, filters per stage,
    global pooling, one or two FC layers, quantized inference."""

    name: ClassVar[str] = "resnet"
    conformance: ClassVar[dict] = {"params": {"input_size": 8, "channels": 1, "width": 0.0625}}

    input_size: int = nascore.param(32, help="side of the task's square images (CIFAR-10: 32)", validator=in_range(1))
    channels: int = nascore.param(3, help="image channels of the task", validator=in_range(1))
    image_sizes: list[int] = nascore.param(factory=list, help="image sides searched; empty: 3/4 and all of input_size")
    filters: list[str] = nascore.param(factory=lambda: list(IMAGE_FILTERS), help="image DR filters (section 4.2.2)")
    blocks_low: int = nascore.param(2, help="fewest residual blocks per stage", validator=in_range(1))
    blocks_high: int = nascore.param(6, help="most residual blocks per stage", validator=in_range(1))
    width: float = nascore.param(1.0, help="multiplier of Table 8's filter ranges (lows and steps)",
                                 validator=in_range(0.0, low_open=True))
    bits: list[int] = nascore.param(factory=lambda: list(BITS), help="inference bit widths searched")

    def sizes(self) -> list[int]:
        return _image_sizes(self.image_sizes, self.input_size, (0.75, 1.0))

    def filter_range(self, low: int, step: int) -> tuple[int, int, int]:
        lo, st = max(1, round(low * self.width)), max(1, round(step * self.width))
        return lo, lo + 5 * st, st

    def dimensions(self):
        _grid("blocks", self.blocks_low, self.blocks_high, 1)
        _subset("filters", self.filters, IMAGE_FILTERS)
        _subset("bits", self.bits, BITS)
        dims = [Choice("image_filter", self.filters), Choice("image_size", self.sizes())]
        dims += [Int(f"blocks{i}", self.blocks_low, self.blocks_high) for i in range(1, 5)]
        dims += [Int(name, *self.filter_range(low, step)) for name, low, step in TABLE8_FILTERS]
        return dims + [Choice("pooling", ("max", "avg")), Int("fc_layers", 1, 2), Choice("quant_bits", self.bits)]

    def is_active(self, genome, name):
        return name != "image_filter" or genome["image_size"] < self.input_size

    @staticmethod
    def depth(arch) -> int:
        """Layers counted as in ResNet-18: stem + 2 per basic block + classifier."""
        return 2 + 2 * sum(arch[f"blocks{i}"] for i in range(1, 5))

    def tokens(self, arch):
        s = arch["image_size"]
        out = [f"RESIZE-{arch['image_filter']}-{s}"] if s < self.input_size else [f"INPUT-{s}"]
        out += [f"DEPTH-{self.depth(arch)}", f"C3-{arch['conv1']}"]
        out += [f"STAGE{i}-{arch[f'blocks{i}']}x{arch[f'conv{i + 1}_x']}" for i in range(1, 5)]
        fc = [f"FC-{arch['conv5_x']}"] if arch["fc_layers"] == 2 else []
        return out + [f"{arch['pooling'].upper()}POOL", *fc, "FC-out", f"Q{arch['quant_bits']}"]

    def build(self, arch, task):
        from .mlp import FeedForward
        from .networks import SteerageNet, resnet_features

        self._check_image_task(task)
        widths = [arch[f"conv{i}_x"] for i in range(2, 6)]
        blocks = [arch[f"blocks{i}"] for i in range(1, 5)]
        features, width, pairs = resnet_features(self.channels, arch["conv1"], widths, blocks, arch["pooling"],
                                                 bottleneck=self.depth(arch) >= 50)
        hidden = [arch["conv5_x"]] if arch["fc_layers"] == 2 else []
        classifier = FeedForward([width, *hidden, task.num_classes])
        return SteerageNet(self._image_front(arch, task), features, classifier, pairs, weight_bits=arch["quant_bits"])

