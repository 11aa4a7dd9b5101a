"""The MetaQNN chain search space (Baker et al., ICLR 2017; Section 4.2 of the
N-gram/SRM paper, which samples 1,000 architectures from it).

A genome is a depth plus one slot per possible layer; slot ``i`` has a layer type
(convolution, max pooling, fully connected, global average pooling) and the options of
that type (kernel and filters, pool size/stride, units); options of an unused type and
slots beyond the depth are inactive.  MetaQNN's validity rules are enforced by
:meth:`MetaQNNSpace.check` and restored by :meth:`MetaQNNSpace.repair`:

* fully connected layers only at the end, at most ``max_fc`` of them;
* no pooling layer right after a pooling layer;
* nothing after global average pooling (it terminates the network, as in MetaQNN).

Tokens are one per layer: ``C3-64`` (3x3 convolution, 64 filters), ``P2`` (2x2 max
pooling, stride 2), ``P5s3`` (5x5 pooling, stride 3), ``FC-128``, ``GAP``.
"""

from __future__ import annotations

import re

import attrs
import numpy as np

from nascore.api import Architecture, Choice, Int, SearchSpace
from nascore.api import ConfigError, InvalidGenomeError
from nascore.api import in_range, param

from .layers import CachedTokens, conv_out, scaled

TYPES = ("conv", "pool", "fc", "gap")
_TOKEN = re.compile(r"^(?:C(\d+)-(\d+)|P(\d+)(?:s(\d+))?|FC-(\d+)|GAP)$")


def parse_pool(text: str) -> tuple[int, int]:
    """``"3/2"`` -> (size 3, stride 2)."""
    try:
        size, stride = (int(p) for p in str(text).split("/"))
    except ValueError:
        raise ConfigError(f"pool option {text!r} must look like 'size/stride', e.g. '3/2'") from None
    if size < 1 or stride < 1:
        raise ConfigError(f"pool option {text!r}: size and stride must be positive")
    return size, stride


def _positive_list(inst, attribute, value):
    if not value or any(int(v) < 1 for v in value):
        raise ValueError(f"{attribute.name} must be a non-empty list of positive integers, got {value!r}")


def _pool_list(inst, attribute, value):
    if not value:
        raise ValueError("pools must list at least one 'size/stride' option")
    for p in value:
        parse_pool(p)


@attrs.define(slots=False, eq=False)
class MetaQNNSpace(CachedTokens, SearchSpace):
    """Chain CNNs in the MetaQNN style (Baker et al. 2017, Table 1 of their paper):
    convolutions (kernel 1/3/5; 64-512 filters), max pooling (5/3, 3/2, 2/2), up to two
    fully connected layers (512/256/128 units), optional global average pooling, then the
    classifier."""

    name = "metaqnn"

    max_layers: int = param(12, help="maximum number of layers before the classifier (paper: 12 for SVHN, 18 for CIFAR-10)",
                            validator=in_range(1, 18))
    kernels: list[int] = param(factory=lambda: [1, 3, 5], help="convolution kernel sizes", validator=_positive_list)
    filters: list[int] = param(factory=lambda: [64, 128, 256, 512], help="convolution filter counts",
                               validator=_positive_list)
    pools: list[str] = param(factory=lambda: ["5/3", "3/2", "2/2"], help="max-pooling 'size/stride' options",
                             validator=_pool_list)
    units: list[int] = param(factory=lambda: [512, 256, 128], help="fully connected layer widths",
                             validator=_positive_list)
    max_fc: int = param(2, help="maximum number of fully connected layers (all at the end)", validator=in_range(0, 18))
    allow_gap: bool = param(True, help="allow global average pooling as the last layer")
    width: float = param(1.0, help="width factor applied to filters and units when building (fits small inputs)",
                         validator=in_range(0.0, 64.0, low_open=True))
    batch_norm: bool = param(True, help="batch normalization after each convolution (MetaQNN had none)")
    dropout: float = param(0.0, help="dropout after each fully connected layer", validator=in_range(0.0, 1.0, high_open=True))

    # ---- declaration ----------------------------------------------------------------
    def types(self) -> tuple[str, ...]:
        return tuple(t for t in TYPES if (t != "fc" or self.max_fc > 0) and (t != "gap" or self.allow_gap))

    def dimensions(self):
        dims = [Int("depth", 1, self.max_layers)]
        for i in range(1, self.max_layers + 1):
            dims += [
                Choice(f"l{i}_type", self.types()),
                Choice(f"l{i}_kernel", tuple(int(k) for k in self.kernels)),
                Choice(f"l{i}_filters", tuple(int(f) for f in self.filters)),
                Choice(f"l{i}_pool", tuple(str(p) for p in self.pools)),
                Choice(f"l{i}_units", tuple(int(u) for u in self.units)),
            ]
        return dims

    def is_active(self, genome: dict, name: str) -> bool:
        if name == "depth":
            return True
        slot, _, what = name.partition("_")
        i = int(slot[1:])
        if i > genome["depth"]:
            return False
        kind = genome[f"l{i}_type"]
        return what == "type" or {"kernel": "conv", "filters": "conv", "pool": "pool", "units": "fc"}[what] == kind

    def layer_types(self, genome: dict) -> list[str]:
        return [genome[f"l{i}_type"] for i in range(1, genome["depth"] + 1)]

    # ---- MetaQNN validity rules ------------------------------------------------------
    def check(self, genome: dict) -> str | None:
        types = self.layer_types(genome)
        n_fc = types.count("fc")
        if n_fc > self.max_fc:
            return f"{n_fc} fully connected layers, at most {self.max_fc} allowed"
        if n_fc and any(t != "fc" for t in types[types.index("fc"):]):
            return "fully connected layers must come last (no convolution, pooling or GAP after one)"
        if "gap" in types[:-1]:
            return "global average pooling ends the network: no layers after it"
        for i in range(1, len(types)):
            if types[i] == "pool" and types[i - 1] == "pool":
                return f"layer {i + 1} is a pooling layer right after a pooling layer"
        return None

    def repair(self, genome: dict, rng: np.random.Generator | None = None) -> dict:
        """Make a genome valid by turning offending layers into convolutions: FC layers
        not in the final run (or beyond ``max_fc``), a GAP before the last layer, and a
        pooling layer right after pooling.  New convolutions draw kernel and filters from
        ``rng`` when given, else keep the slot's values."""
        g = dict(genome)
        types = self.layer_types(g)
        n = len(types)
        trailing = 0
        while trailing < n and types[n - 1 - trailing] == "fc":
            trailing += 1
        keep_fc = set(range(n - min(trailing, self.max_fc), n))
        for i, t in enumerate(types):
            if (t == "fc" and i not in keep_fc) or (t == "gap" and i != n - 1):
                types[i] = "conv"
            elif t == "pool" and i > 0 and types[i - 1] == "pool":
                types[i] = "conv"
        for i, t in enumerate(types, start=1):
            if t == "conv" and g[f"l{i}_type"] != "conv" and rng is not None:
                g[f"l{i}_kernel"] = self.dimension(f"l{i}_kernel").sample(rng)
                g[f"l{i}_filters"] = self.dimension(f"l{i}_filters").sample(rng)
            g[f"l{i}_type"] = t
        return self.canonicalize(g)

    def sample(self, rng: np.random.Generator) -> Architecture:
        """A uniform draw of every dimension, repaired (MetaQNN's random exploration)."""
        g = {n: d.sample(rng) for n, d in self._dims().items()}
        return Architecture(self.name, self.repair(g, rng))

    def crossover(self, a: Architecture, b: Architecture, rng: np.random.Generator) -> Architecture:
        ga, gb = a.genome, b.genome
        g = {n: (ga[n] if rng.random() < 0.5 else gb[n]) for n in self._dims()}
        return Architecture(self.name, self.repair(g, rng))

    # ---- views ------------------------------------------------------------------------
    def layers(self, arch: Architecture) -> list[dict]:
        """The layers of ``arch`` as dicts: ``{"type": "conv", "kernel": 3, "filters": 64}``, ..."""
        g = arch.genome
        out = []
        for i, t in enumerate(self.layer_types(g), start=1):
            if t == "conv":
                out.append({"type": t, "kernel": g[f"l{i}_kernel"], "filters": g[f"l{i}_filters"]})
            elif t == "pool":
                size, stride = parse_pool(g[f"l{i}_pool"])
                out.append({"type": t, "size": size, "stride": stride})
            elif t == "fc":
                out.append({"type": t, "units": g[f"l{i}_units"]})
            else:
                out.append({"type": t})
        return out

    def _token_tuple(self, arch: Architecture) -> tuple:
        return tuple(_layer_token(layer) for layer in self.layers(arch))

    def num_layers(self, arch: Architecture) -> int:
        """Layers including the classifier (the paper's AP 'number of layers')."""
        return arch.genome["depth"] + 1

    def to_string(self, arch: Architecture) -> str:
        return " ".join(self.tokens(arch))

    def from_string(self, text: str) -> Architecture:
        """Parse ``"C3-64 P2 FC-128"`` (tokens separated by spaces)."""
        tokens = str(text).split()
        if not tokens or len(tokens) > self.max_layers:
            raise InvalidGenomeError(f"{self.name}: {text!r} must have 1..{self.max_layers} layer tokens")
        g = {n: d.default() for n, d in self._dims().items()}
        g["depth"] = len(tokens)
        pools = {parse_pool(p): p for p in self.pools}
        for i, tok in enumerate(tokens, start=1):
            m = _TOKEN.match(tok)
            if m is None:
                raise InvalidGenomeError(f"{self.name}: cannot parse layer token {tok!r} (e.g. C3-64, P2, P3s2, FC-128, GAP)")
            if m.group(1):
                g.update({f"l{i}_type": "conv", f"l{i}_kernel": int(m.group(1)), f"l{i}_filters": int(m.group(2))})
            elif m.group(3):
                size = int(m.group(3))
                pair = (size, int(m.group(4) or size))
                if pair not in pools:
                    raise InvalidGenomeError(f"{self.name}: pooling {tok!r} is not among {list(self.pools)}")
                g.update({f"l{i}_type": "pool", f"l{i}_pool": pools[pair]})
            elif m.group(5):
                g.update({f"l{i}_type": "fc", f"l{i}_units": int(m.group(5))})
            else:
                g[f"l{i}_type"] = "gap"
        return self.make(g)

    # ---- networks -----------------------------------------------------------------------
    def _plan(self, arch: Architecture, task) -> list[tuple]:
        """Walk the layers over the task's input shape: (layer, in_shape, out_shape)."""
        shape = _image_shape(self.name, task)
        plan = []
        for layer in self.layers(arch):
            c, h, w = shape if len(shape) == 3 else (shape[0], 1, 1)
            if layer["type"] == "conv":
                out = (scaled(layer["filters"], self.width), h, w)
            elif layer["type"] == "pool":
                k = min(layer["size"], h, w)
                out = (c, conv_out(h, k, layer["stride"]), conv_out(w, k, layer["stride"]))
                layer = {**layer, "size": k}
            elif layer["type"] == "gap":
                out = (c,)
            else:
                out = (scaled(layer["units"], self.width),)
            plan.append((layer, shape, out))
            shape = out
        return plan

    def build(self, arch: Architecture, task):
        from .networks import build_chain

        return build_chain(self._plan(arch, task), task.num_classes, batch_norm=self.batch_norm, dropout=self.dropout)

    def cost(self, arch: Architecture, task) -> dict:
        """Analytic parameter count and multiply-adds (convolutions and linear layers)."""
        from .layers import chain_cost

        return chain_cost(self._plan(arch, task), task.num_classes, batch_norm=self.batch_norm)


def _layer_token(layer: dict) -> str:
    t = layer["type"]
    if t == "conv":
        return f"C{layer['kernel']}-{layer['filters']}"
    if t == "pool":
        return f"P{layer['size']}" if layer["size"] == layer["stride"] else f"P{layer['size']}s{layer['stride']}"
    if t == "fc":
        return f"FC-{layer['units']}"
    return "GAP"


def _image_shape(space: str, task) -> tuple:
    shape = tuple(task.input_shape)
    if len(shape) != 3:
        raise ConfigError(f"space {space!r} builds image networks; task {getattr(task, 'name', '?')!r} has input shape "
                          f"{shape} (need channels x height x width)")
    return shape
