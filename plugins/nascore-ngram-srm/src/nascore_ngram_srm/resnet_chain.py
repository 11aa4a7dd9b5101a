"""The ResNet-family chain space of Section 4.2 of the N-gram/SRM paper (after Baker
et al.'s SRM experiments): a stem convolution, 2-18 residual blocks, each of three
convolutions with batch normalization and a summation, kernel 3/5/7 and a filter count
per block from a configurable range, global average pooling and a linear classifier.

The blocks are split evenly into ``stages``; the first block of every stage after the
first halves the resolution (stride 2).  Tokens are one per block: ``R3-16`` (kernel 3,
16 filters) and ``R5-8/2`` for a block that downsamples.
"""

from __future__ import annotations

import re

import attrs

from nascore.api import Architecture, Choice, Int, SearchSpace
from nascore.api import ConfigError, InvalidGenomeError
from nascore.api import in_range, param

from .layers import CachedTokens, conv_cost, conv_out, linear_cost, scaled

_TOKEN = re.compile(r"^R(\d+)-(\d+)(/2)?$")


def _odd_kernels(inst, attribute, value):
    if not value or any(int(k) < 1 or int(k) % 2 == 0 for k in value):
        raise ValueError(f"kernels must be a non-empty list of odd positive sizes, got {value!r}")


@attrs.define(slots=False, eq=False)
class ResNetChainSpace(CachedTokens, SearchSpace):
    """Residual chains: per-block kernel size (3/5/7) and filter count (2-22), 2-18
    blocks of three convolutions + batch normalization + summation (paper Section 4.2)."""

    name = "resnet-chain"

    min_blocks: int = param(2, help="fewest residual blocks", validator=in_range(1))
    max_blocks: int = param(18, help="most residual blocks", validator=in_range(1, 64))
    kernels: list[int] = param(factory=lambda: [3, 5, 7], help="kernel sizes of a block (odd)", validator=_odd_kernels)
    min_filters: int = param(2, help="fewest filters in a block", validator=in_range(1))
    max_filters: int = param(22, help="most filters in a block", validator=in_range(1))
    stages: int = param(3, help="resolution stages; each after the first starts with a stride-2 block",
                        validator=in_range(1, 8))
    width: float = param(1.0, help="width factor applied to the filter counts when building",
                         validator=in_range(0.0, 64.0, low_open=True))

    def __attrs_post_init__(self):
        if self.min_blocks > self.max_blocks:
            raise ConfigError(f"resnet-chain: min_blocks {self.min_blocks} > max_blocks {self.max_blocks}")
        if self.min_filters > self.max_filters:
            raise ConfigError(f"resnet-chain: min_filters {self.min_filters} > max_filters {self.max_filters}")

    def dimensions(self):
        dims = [Int("blocks", self.min_blocks, self.max_blocks)]
        for i in range(1, self.max_blocks + 1):
            dims += [Choice(f"b{i}_kernel", tuple(int(k) for k in self.kernels)),
                     Int(f"b{i}_filters", self.min_filters, self.max_filters)]
        return dims

    def is_active(self, genome: dict, name: str) -> bool:
        return name == "blocks" or int(name[1:].partition("_")[0]) <= genome["blocks"]

    def strides(self, n_blocks: int) -> list[int]:
        """Stride of each block: 2 at the first block of every stage after the first."""
        stage = [i * self.stages // n_blocks for i in range(n_blocks)]
        return [2 if i > 0 and stage[i] > stage[i - 1] else 1 for i in range(n_blocks)]

    def blocks(self, arch: Architecture) -> list[dict]:
        g = arch.genome
        n = g["blocks"]
        return [{"kernel": g[f"b{i}_kernel"], "filters": g[f"b{i}_filters"], "stride": s}
                for i, s in zip(range(1, n + 1), self.strides(n))]

    # ---- views ------------------------------------------------------------------------
    def _token_tuple(self, arch: Architecture) -> tuple:
        return tuple(f"R{b['kernel']}-{b['filters']}" + ("/2" if b["stride"] == 2 else "") for b in self.blocks(arch))

    def num_layers(self, arch: Architecture) -> int:
        """Weight layers: stem, three convolutions per block, classifier."""
        return 3 * arch.genome["blocks"] + 2

    def graph(self, arch: Architecture):
        """Feature maps as nodes; each block adds three ``conv`` edges and a ``skip``
        (identity) or ``proj`` (1x1 projection) edge around them."""
        import networkx as nx

        g = nx.DiGraph()
        g.add_node(0, label="input")
        g.add_node(1, label="stem")
        g.add_edge(0, 1, op="conv3x3")
        blocks = self.blocks(arch)
        node, prev_c = 1, blocks[0]["filters"]  # the stem has the first block's width
        for b in blocks:
            k, f = b["kernel"], b["filters"]
            a = node
            for j in range(3):
                g.add_node(node + 1, label=f"R{k}-{f}.{j + 1}")
                g.add_edge(node, node + 1, op=f"conv{k}x{k}")
                node += 1
            g.add_edge(a, node, op="skip" if b["stride"] == 1 and prev_c == f else "proj")
            prev_c = f
        g.add_node(node + 1, label="output")
        g.add_edge(node, node + 1, op="gap-linear")
        return g

    def to_string(self, arch: Architecture) -> str:
        return " ".join(self.tokens(arch))

    def from_string(self, text: str) -> Architecture:
        """Parse ``"R3-8 R5-16/2 R3-16"``; the ``/2`` marks must match the stage layout."""
        tokens = str(text).split()
        if not self.min_blocks <= len(tokens) <= self.max_blocks:
            raise InvalidGenomeError(f"{self.name}: {text!r} must have {self.min_blocks}..{self.max_blocks} block tokens")
        g = {n: d.default() for n, d in self._dims().items()}
        g["blocks"] = len(tokens)
        for i, (tok, stride) in enumerate(zip(tokens, self.strides(len(tokens))), start=1):
            m = _TOKEN.match(tok)
            if m is None:
                raise InvalidGenomeError(f"{self.name}: cannot parse block token {tok!r} (e.g. R3-16 or R5-8/2)")
            if bool(m.group(3)) != (stride == 2):
                raise InvalidGenomeError(f"{self.name}: block {i} ({tok!r}) {'must' if stride == 2 else 'cannot'} "
                                         f"downsample with {len(tokens)} blocks in {self.stages} stages")
            g[f"b{i}_kernel"], g[f"b{i}_filters"] = int(m.group(1)), int(m.group(2))
        return self.make(g)

    # ---- networks -----------------------------------------------------------------------
    def _channels(self, arch: Architecture, task) -> tuple[int, int, list[dict]]:
        shape = tuple(task.input_shape)
        if len(shape) != 3:
            raise ConfigError(f"space {self.name!r} builds image networks; task {getattr(task, 'name', '?')!r} "
                              f"has input shape {shape} (need channels x height x width)")
        blocks = [{**b, "channels": scaled(b["filters"], self.width)} for b in self.blocks(arch)]
        return shape[0], blocks[0]["channels"], blocks

    def build(self, arch: Architecture, task):
        from .networks import build_residual_chain

        cin, stem, blocks = self._channels(arch, task)
        return build_residual_chain(cin, stem, blocks, task.num_classes)

    def cost(self, arch: Architecture, task) -> dict:
        """Analytic parameter count and multiply-adds of :meth:`build`'s network."""
        cin, stem, blocks = self._channels(arch, task)
        h, w = task.input_shape[1:]
        params, flops = conv_cost(cin, stem, 3, h * w, batch_norm=True)
        c = stem
        for b in blocks:
            k, f, s = b["kernel"], b["channels"], b["stride"]
            h, w = conv_out(h, k, s, k // 2), conv_out(w, k, s, k // 2)
            for cost in (conv_cost(c, f, k, h * w, batch_norm=True), conv_cost(f, f, k, h * w, batch_norm=True),
                         conv_cost(f, f, k, h * w, batch_norm=True)):
                params, flops = params + cost[0], flops + cost[1]
            if s != 1 or c != f:
                p, fl = conv_cost(c, f, 1, h * w, batch_norm=True)
                params, flops = params + p, flops + fl
            c = f
        p, fl = linear_cost(c, task.num_classes)
        return {"params": params + p, "flops": flops + fl}
