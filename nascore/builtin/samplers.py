"""Built-in samplers (a default plugin)."""

from __future__ import annotations

import attrs

from ..hookspecs import hookimpl


@attrs.define
class RandomSampler:
    """Uniform random sampling over the valid genomes of the space."""

    space: object = attrs.field(default=None, init=False, repr=False)
    rng: object = attrs.field(default=None, init=False, repr=False)

    def setup(self, ctx) -> None:
        self.space = ctx.space
        self.rng = ctx.rng

    def ask(self, n: int):
        if self.space is None:
            raise RuntimeError("sampler used before setup(ctx)")
        return [self.space.sample(self.rng) for _ in range(n)]

    def tell(self, evaluations) -> None:
        """Uniform sampling learns nothing."""


@hookimpl
def register_samplers(register):
    register("random", RandomSampler, description="uniform random sampling over the space")
