"""A Latin hypercube sampler: each batch of n points puts exactly one point in each of
n equal slices of every dimension of the unit cube, decoded with ``space.from_vector``."""

import attrs
from scipy.stats import qmc

import nascore
from nascore.api import SamplerBase, in_range


@attrs.define
class LatinHypercubeSampler(SamplerBase):
    """Latin hypercube sampling over a space's unit-cube encoding (not adaptive: ``tell`` is
    :class:`~nascore.api.SamplerBase`'s, which ignores the results)."""

    optimization: str | None = nascore.param(None, help="scipy's LHS optimization ('random-cd' or None)")
    strength: int = nascore.param(1, help="orthogonal-array strength (1 or 2)", validator=in_range(1, 2))
    space: object = attrs.field(default=None, init=False, repr=False)
    rng: object = attrs.field(default=None, init=False, repr=False)
    _engine: object = attrs.field(default=None, init=False, repr=False)

    def setup(self, ctx):
        super().setup(ctx)  # keeps ctx.space and ctx.rng
        self._engine = qmc.LatinHypercube(d=ctx.space.num_dimensions, optimization=self.optimization, strength=self.strength,
                                          seed=int(ctx.rng.integers(2**31)))

    def ask(self, n):
        points = self._engine.random(n)
        return [self.space.from_vector(u, self.rng) for u in points]
