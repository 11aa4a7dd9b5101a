"""The feed-forward classifier that SCANN grows and prunes (STEERAGE section 3.1, 4.6.1).

A :class:`FeedForward` maps ``h_0 = x`` through hidden layers ``h_1 .. h_L`` (ReLU) to
the logits ``z_{L+1}``.  Layer ``j`` always reads its predecessor through ``layers[j-1]``
(a :class:`MaskedLinear` with bias) and may also read any earlier layer ``m < j-1``
through a *skip block* ``skips["j_m"]`` (a MaskedLinear without bias): SCANN Schemes A
and B allow connections between non-adjacent layers, Scheme C keeps an MLP.  A plain MLP
is the special case without skip blocks, so the spaces build their classifiers as a
FeedForward from the start and SCANN edits it in place.

Structural edits (neuron insertion/removal, new inputs for NeST's feature-map growth)
replace the affected MaskedLinear modules by resized copies: weights and masks of the
kept connections are preserved exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nascore.api import ConfigError

from .layers import MaskedLinear


def _resized(old: MaskedLinear, rows=None, cols=None, add_rows: int = 0, add_cols: int = 0) -> MaskedLinear:
    """A copy of ``old`` keeping the rows/cols indexed by ``rows``/``cols`` (all when
    None) and appending ``add_rows``/``add_cols`` zero, inactive ones."""
    W, M = old.weight.data, old.weight_mask
    b = old.bias.data if old.bias is not None else None
    if rows is not None:
        W, M = W[rows], M[rows]
        b = b[rows] if b is not None else None
    if cols is not None:
        W, M = W[:, cols], M[:, cols]
    out_f, in_f = W.shape[0] + add_rows, W.shape[1] + add_cols
    new = MaskedLinear(in_f, out_f, bias=b is not None, weight_bits=old.weight_bits).to(W.device)
    new.train(old.training)
    with torch.no_grad():
        new.weight.zero_()
        new.weight_mask.zero_()
        new.weight[: W.shape[0], : W.shape[1]] = W
        new.weight_mask[: W.shape[0], : W.shape[1]] = M
        if b is not None:
            new.bias.zero_()
            new.bias[: b.shape[0]] = b
    return new


class FeedForward(nn.Module):
    """Masked MLP with optional skip connections; ``sizes = [inputs, hidden..., outputs]``."""

    def __init__(self, sizes, weight_bits: int = 32):
        super().__init__()
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ConfigError(f"a feed-forward network needs >= 2 layer sizes >= 1, got {sizes}")
        self.layers = nn.ModuleList(MaskedLinear(a, b, weight_bits=weight_bits) for a, b in zip(sizes, sizes[1:]))
        self.skips = nn.ModuleDict()
        self.capture = False
        self.activations: list = []
        self.preacts: list = []

    # ---- structure ---------------------------------------------------------------
    @property
    def sizes(self) -> list[int]:
        return [self.layers[0].in_features] + [lin.out_features for lin in self.layers]

    @property
    def depth(self) -> int:
        """Number of hidden layers L."""
        return len(self.layers) - 1

    def incoming(self, j: int) -> list[tuple[int, MaskedLinear]]:
        """``(source layer m, block)`` of every block feeding layer ``j`` (1..L+1)."""
        out = [(j - 1, self.layers[j - 1])]
        out += [(m, self.skips[f"{j}_{m}"]) for m in range(j - 1) if f"{j}_{m}" in self.skips]
        return out

    def outgoing(self, j: int) -> list[tuple[int, MaskedLinear]]:
        """``(target layer t, block)`` of every block reading layer ``j``."""
        out = [(j + 1, self.layers[j])] if j < len(self.layers) else []
        out += [(t, self.skips[f"{t}_{j}"]) for t in range(j + 2, len(self.layers) + 1) if f"{t}_{j}" in self.skips]
        return out

    def _set_block(self, t: int, m: int, block: MaskedLinear) -> None:
        if m == t - 1:
            self.layers[t - 1] = block
        else:
            self.skips[f"{t}_{m}"] = block

    def skip_block(self, t: int, m: int) -> MaskedLinear:
        """The skip block ``m -> t`` (created inactive when missing)."""
        key = f"{t}_{m}"
        if key not in self.skips:
            sizes = self.sizes
            ref = self.layers[t - 1]
            block = MaskedLinear(sizes[m], sizes[t], bias=False, weight_bits=ref.weight_bits).to(ref.weight.device)
            with torch.no_grad():
                block.weight.zero_()
                block.weight_mask.zero_()
            block.train(self.training)
            self.skips[key] = block
        return self.skips[key]

    # ---- forward -----------------------------------------------------------------
    def forward(self, x):
        hs = [x.flatten(1)]
        if self.capture:
            self.activations, self.preacts = hs, []
        last = len(self.layers)
        for j in range(1, last + 1):
            z = sum(block(hs[m]) for m, block in self.incoming(j))
            if self.capture:
                z.retain_grad()
                self.preacts.append(z)
            if j == last:
                return z
            hs.append(F.relu(z))
        raise AssertionError("unreachable")

    # ---- edits -----------------------------------------------------------------------
    def add_inputs(self, count: int, weights: torch.Tensor | None = None) -> None:
        """Append ``count`` input features (NeST feature-map growth feeding this network);
        ``weights`` (sizes[1] × count) initialize and activate their connections to layer 1."""
        for t, block in [(t, b) for t, b in self.outgoing(0)]:
            new = _resized(block, add_cols=count)
            if t == 1 and weights is not None:
                with torch.no_grad():
                    new.weight[:, -count:] = weights.to(new.weight)
                    new.weight_mask[:, -count:] = 1.0
            self._set_block(t, 0, new)

    def insert_neurons(self, j: int, w_in: torch.Tensor, bias: torch.Tensor, w_out: torch.Tensor,
                       in_mask: torch.Tensor | None = None, out_mask: torch.Tensor | None = None) -> None:
        """Append ``count`` neurons to hidden layer ``j`` (1..L) with incoming weights
        ``w_in`` (count × sizes[j-1]) and outgoing ``w_out`` (sizes[j+1] × count) on the
        adjacent blocks; skip blocks get inactive zero connections for them."""
        if not 1 <= j <= self.depth:
            raise ConfigError(f"layer {j} is not a hidden layer (1..{self.depth})")
        count = w_in.shape[0]
        for t, block in self.outgoing(j):
            new = _resized(block, add_cols=count)
            if t == j + 1:
                with torch.no_grad():
                    new.weight[:, -count:] = w_out.to(new.weight)
                    new.weight_mask[:, -count:] = 1.0 if out_mask is None else out_mask.to(new.weight)
            self._set_block(t, j, new)
        for m, block in self.incoming(j):
            new = _resized(block, add_rows=count)
            if m == j - 1:
                with torch.no_grad():
                    new.weight[-count:] = w_in.to(new.weight)
                    new.weight_mask[-count:] = 1.0 if in_mask is None else in_mask.to(new.weight)
                    new.bias[-count:] = bias.to(new.weight)
            self._set_block(j, m, new)

    def keep_neurons(self, j: int, keep: torch.Tensor) -> None:
        """Keep only neurons ``keep`` (indices) of hidden layer ``j``."""
        keep = torch.as_tensor(keep, dtype=torch.long, device=self.layers[0].weight.device)
        for t, block in self.outgoing(j):
            self._set_block(t, j, _resized(block, cols=keep))
        for m, block in self.incoming(j):
            self._set_block(j, m, _resized(block, rows=keep))

    def drop_empty_skips(self) -> None:
        """Remove skip blocks without any active connection."""
        for key in [k for k, b in self.skips.items() if not bool(b.weight_mask.any())]:
            del self.skips[key]

    # ---- conversion ---------------------------------------------------------------
    @classmethod
    def from_module(cls, module: nn.Module) -> "FeedForward":
        """A FeedForward computing the same function as ``module``: a FeedForward, a
        ``nn.Linear`` or a ``nn.Sequential`` of Flatten / Linear / ReLU / Dropout /
        Identity (dropout is dropped: SCANN trains without it)."""
        if isinstance(module, FeedForward):
            return module
        if isinstance(module, nn.Linear):
            items = [module]
        elif isinstance(module, nn.Sequential):
            items = list(module)
        else:
            raise ConfigError(f"SCANN needs a classifier made of Linear layers, got {type(module).__name__}")
        linears = [m for m in items if isinstance(m, nn.Linear)]
        allowed = (nn.Linear, nn.ReLU, nn.Flatten, nn.Dropout, nn.Identity)
        relus = sum(isinstance(m, nn.ReLU) for m in items)
        if not linears or relus != len(linears) - 1 or any(not isinstance(m, allowed) for m in items):
            raise ConfigError("SCANN needs a classifier of Linear layers with ReLU between them "
                              "(Flatten/Dropout allowed)")
        sizes = [linears[0].in_features] + [lin.out_features for lin in linears]
        net = cls(sizes).to(linears[0].weight.device)
        with torch.no_grad():
            for new, old in zip(net.layers, linears):
                new.weight.copy_(old.weight)
                if getattr(old, "weight_mask", None) is not None:
                    new.weight_mask.copy_(old.weight_mask)
                if old.bias is not None:
                    new.bias.copy_(old.bias)
                else:
                    new.bias.zero_()
        return net
