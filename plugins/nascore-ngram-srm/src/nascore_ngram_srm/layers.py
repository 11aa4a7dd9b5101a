"""Shape and cost arithmetic of the chain and residual networks (no torch needed).

A *plan* is the list of ``(layer, in_shape, out_shape)`` a space computes for a task;
:func:`chain_cost` turns it into the ``params`` / ``flops`` (multiply-adds of
convolutions and linear layers, batch 1) that :mod:`.networks` builds exactly.
"""

from __future__ import annotations

import math

_CACHE_LIMIT = 100_000


class CachedTokens:
    """Mixin for spaces: memoize ``tokens`` per architecture key (encoders re-encode
    the same architectures every round); the cache is not pickled."""

    def _token_tuple(self, arch) -> tuple:
        raise NotImplementedError

    def tokens(self, arch) -> list[str]:
        cache = self.__dict__.setdefault("_tokens_cache", {})
        toks = cache.get(arch.key)
        if toks is None:
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            toks = cache[arch.key] = self._token_tuple(arch)
        return list(toks)

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if not k.endswith("_cache")}

    def __setstate__(self, state):
        self.__dict__.update(state)


def conv_out(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    """Output length of a convolution or pooling window along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


def scaled(n: int, width: float) -> int:
    """``n`` channels or units times the width factor, at least one."""
    return max(1, int(round(n * width)))


def conv_cost(cin: int, cout: int, kernel: int, out_hw: int, *, batch_norm: bool) -> tuple[int, int]:
    """(params, multiply-adds) of a bias-free-with-BN (or biased) convolution."""
    params = kernel * kernel * cin * cout + (2 * cout if batch_norm else cout)
    return params, kernel * kernel * cin * cout * out_hw


def linear_cost(fin: int, fout: int) -> tuple[int, int]:
    return fin * fout + fout, fin * fout


def chain_cost(plan: list[tuple], num_classes: int, *, batch_norm: bool) -> dict:
    """Parameters and multiply-adds of a MetaQNN chain built from ``plan``."""
    params = flops = 0
    for layer, shape_in, shape_out in plan:
        if layer["type"] == "conv":
            p, f = conv_cost(shape_in[0], shape_out[0], layer["kernel"], shape_out[1] * shape_out[2],
                             batch_norm=batch_norm)
        elif layer["type"] == "fc":
            p, f = linear_cost(math.prod(shape_in), shape_out[0])
        else:
            p = f = 0
        params, flops = params + p, flops + f
    final = plan[-1][2] if plan else None
    p, f = linear_cost(math.prod(final), num_classes)
    return {"params": params + p, "flops": flops + f}
