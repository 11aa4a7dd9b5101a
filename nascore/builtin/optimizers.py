"""Built-in optimizers (a default plugin): random search, regularized evolution, local search."""

from __future__ import annotations

from collections import deque

import attrs

from ..hookspecs import hookimpl
from ..params import in_range, param
from ..results import OK, SearchResult


def _score(ev, metric):
    value = ev.metric(metric) if ev.status == OK else None
    return float("-inf") if value is None else float(value)


@attrs.define
class RandomSearch:
    """Evaluate architectures drawn from the sampler until the budget is spent."""

    batch_size: int = param(4, help="architectures asked and evaluated per round", validator=in_range(1))

    def run(self, ctx) -> SearchResult:
        while ctx.remaining > 0:
            archs = ctx.sampler.ask(min(self.batch_size, ctx.remaining))
            evals = ctx.evaluate(archs)
            ctx.sampler.tell(evals)
            if not evals:
                break
        best = ctx.best()
        return SearchResult(best.arch if best else None)


@attrs.define
class RegularizedEvolution:
    """Aging evolution (Real et al., 2019): tournament selection, mutation, the oldest dies.

    The initial population comes from the configured sampler, so a learned sampler
    seeds the evolution."""

    population: int = param(20, help="population size P", validator=in_range(2))
    sample_size: int = param(5, help="tournament size S", validator=in_range(1))
    mutation_rate: float | None = param(None, help="per-dimension mutation probability (default 1/#dims)")
    batch_size: int = param(1, help="children evaluated per round", validator=in_range(1))

    def preflight(self, config: dict, space) -> None:
        """Cross-parameter rules, checked before the first evaluation: a tournament draws
        from the population, and a population that fills the budget leaves no evaluation
        for evolution (the run would be random search)."""
        from ..errors import ConfigError

        if self.sample_size > self.population:
            raise ConfigError(f"regularized-evolution: sample_size {self.sample_size} exceeds population "
                              f"{self.population}; a tournament draws from the population")
        if self.population >= config["budget"]:
            raise ConfigError(f"regularized-evolution: population {self.population} >= budget {config['budget']}: "
                              "every evaluation would be a random initial member and none evolved; "
                              "lower population or raise budget")

    def run(self, ctx) -> SearchResult:
        if self.sample_size > self.population:
            from ..errors import ConfigError

            raise ConfigError(f"sample_size {self.sample_size} exceeds population {self.population}")
        pop: deque = deque()
        while len(pop) < self.population and ctx.remaining > 0:
            evals = ctx.evaluate(ctx.sampler.ask(min(self.population - len(pop), ctx.remaining)))
            ctx.sampler.tell(evals)
            if not evals:
                break
            pop.extend(evals)
        while ctx.remaining > 0 and pop:
            children = []
            for _ in range(min(self.batch_size, ctx.remaining)):
                idx = ctx.rng.choice(len(pop), size=min(self.sample_size, len(pop)), replace=False)
                parent = max((pop[i] for i in idx), key=lambda e: _score(e, ctx.metric))
                children.append(ctx.space.mutate(parent.arch, ctx.rng, self.mutation_rate))
            evals = ctx.evaluate(children)
            if not evals:
                break
            ctx.sampler.tell(evals)
            for ev in evals:
                pop.append(ev)
                if len(pop) > self.population:
                    pop.popleft()
        best = ctx.best()
        return SearchResult(best.arch if best else None)


@attrs.define
class LocalSearch:
    """First-improvement hill climbing over one-dimension neighbours, restarting from the
    sampler when a local optimum is reached (White et al., 2021)."""

    initial: int = param(10, help="random architectures evaluated to pick each starting point", validator=in_range(1))
    batch_size: int = param(4, help="neighbours evaluated per round", validator=in_range(1))

    def run(self, ctx) -> SearchResult:
        while ctx.remaining > 0:
            evals = ctx.evaluate(ctx.sampler.ask(min(self.initial, ctx.remaining)))
            ctx.sampler.tell(evals)
            if not evals:
                break
            current = max(evals, key=lambda e: _score(e, ctx.metric))
            self._climb(ctx, current)
        best = ctx.best()
        return SearchResult(best.arch if best else None)

    def _climb(self, ctx, current) -> None:
        while ctx.remaining > 0:
            neighbours = ctx.space.neighbors(current.arch)
            order = ctx.rng.permutation(len(neighbours))
            improved = False
            for start in range(0, len(order), self.batch_size):
                batch = [neighbours[i] for i in order[start:start + self.batch_size]]
                evals = ctx.evaluate(batch)
                ctx.sampler.tell(evals)
                better = [e for e in evals if _score(e, ctx.metric) > _score(current, ctx.metric)]
                if better:
                    current = max(better, key=lambda e: _score(e, ctx.metric))
                    improved = True
                    break
                if ctx.remaining <= 0 or len(evals) < len(batch):
                    return
            if not improved:
                return


@hookimpl
def register_optimizers(register):
    register("random-search", RandomSearch, description="random search over the sampler")
    register("regularized-evolution", RegularizedEvolution, description="aging evolution (Real et al. 2019)")
    register("local-search", LocalSearch, description="hill climbing with random restarts")
    from .guided import GuidedLocalSearch

    register("guided-local-search", GuidedLocalSearch,
             description="local search querying neighbours in a model's order (TPE density ratio or a predictor), deduplicated")
