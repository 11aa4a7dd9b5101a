"""Efficient evolutionary search, STEERAGE's global search module (section 4.5, Algorithm 2).

The run first trains architectures to build the accuracy predictor: it asks the run's
sampler for them in rounds (with ``iterative-selection`` this is Algorithm 1; with any
other sampler, plain sampling), evaluates them and tells the results.  The predictor is
then fitted on every successful evaluation, and Algorithm 2 maximizes the *predicted*
accuracy, ``x* = argmax Predicted-Acc(x)``, without training anything:

    Parents = iterCount random architectures, rewards = getAcc(Parents)
    repeat I_max times:
        Children = {}
        for parent in Parents: child = parent; with probability rho child = mutate(parent)
        Children = Children U Parents, reverse-sorted by reward
        bestArch = Children[0];  Parents = Children[:iterCount]

Finally ``bestArch`` is trained on the real task -- with ``top_k`` > 1 the ``top_k``
best-predicted architectures not evaluated yet, for which budget is kept (the answer is
checked, not taken on the predictor's word; ``base``, the paper's base architecture, is
trained first and so is among the candidates too).  Any
budget still left buys the next architectures of the final population in predicted order
(then fresh sampler draws), so a budget of N is N distinct evaluations.  The run reports
the best architecture it *evaluated* on the feedback metric; when the predictor's pick is
not that one, the pick is recorded in ``info["predicted_pick"]``.  With ``final_epochs``
the reported best is retrained for that many epochs by the run's trainer (reported in the
result's metrics and weights; not counted in the budget).
"""

from __future__ import annotations

import time

import attrs
import numpy as np

import nascore
from nascore.api import in_range
from nascore.api import OK, SearchResult

from .sampling import default_predictor, encode, fit_on


@attrs.define(slots=False)
class EfficientEvolutionarySearch:
    """Algorithm 2 of the STEERAGE paper on a boosted-tree accuracy predictor."""

    population: int = nascore.param(100, help="architectures kept per iteration (iterCount)", validator=in_range(1))
    iterations: int = nascore.param(200, help="search iterations (I_max)", validator=in_range(0))
    mutation_prob: float = nascore.param(0.5, help="probability rho that a child is a mutated parent",
                                         validator=in_range(0.0, 1.0))
    mutation_rate: float | None = nascore.param(None, help="per-dimension mutation rate (none: 1/#dimensions)",
                                                validator=in_range(0.0, 1.0))
    crossover_prob: float = nascore.param(0.0, help="probability a child is first crossed with another parent "
                                                    "(0: Algorithm 2 as printed, mutation only)",
                                          validator=in_range(0.0, 1.0))
    samples: int = nascore.param(0, help="architectures trained for the predictor (0: the budget minus one)",
                                 validator=in_range(0))
    batch_size: int = nascore.param(0, help="architectures asked per round (0: the sampler's per_iteration, else 10)",
                                    validator=in_range(0))
    final_epochs: int = nascore.param(0, help="retrain the best for this many epochs (0: evaluate it like the samples)",
                                      validator=in_range(0))
    top_k: int = nascore.param(1, help="the top-k predicted architectures are trained after EES and the answer "
                                       "chosen among everything evaluated (budget kept for them)",
                               validator=in_range(1))
    base: dict | None = nascore.param(None, help="the base architecture (a genome, e.g. the baseline's layers): "
                                                 "trained first, in the predictor's data and among the answers")

    # ---- phase 1: predictor training data ----------------------------------------------
    def _sampler(self, ctx):
        """The run's sampler, or (none configured) a Sobol sampler kept in steerage's state area."""
        if ctx.sampler is not None:
            return ctx.sampler
        state = ctx.state("steerage")
        if "sampler" not in state:
            from .sampling import SobolSampler

            state["sampler"] = SobolSampler()
            state["sampler"].setup(ctx)
        return state["sampler"]

    def collect(self, ctx) -> int:
        """Train architectures from the sampler until ``samples`` (or the sampler's own
        schedule, e.g. Algorithm 1's rounds) is done; returns how many were asked."""
        sampler = self._sampler(ctx)
        if self.base is not None and ctx.remaining > 0:
            ctx.evaluate([ctx.space.make(dict(self.base))])  # the paper's base architecture
        keep = min(self.top_k, max(ctx.remaining - 1, 1))  # budget kept for the top-k check
        target = min(self.samples or max(ctx.remaining - keep, 0), max(ctx.remaining - keep, 0))
        if target == 0 and ctx.remaining > 0 and not ctx.history:
            target = ctx.remaining  # a budget of one: the sample is all there is
        step = self.batch_size or getattr(sampler, "per_iteration", 10)
        asked = 0
        while asked < target and not getattr(sampler, "exhausted", False):
            archs = sampler.ask(min(step, target - asked))
            evals = ctx.evaluate(archs)
            sampler.tell(evals)
            asked += len(archs)
            if len(evals) < len(archs) or ctx.remaining == 0:
                break
        return asked

    # ---- phase 2: Algorithm 2 ---------------------------------------------------------
    def evolve(self, ctx, predict) -> tuple:
        """Algorithm 2 on ``predict(archs) -> rewards``; returns (best, reward, predictions)."""
        ranked, rewards, count = self.search(ctx, predict)
        return ranked[0], float(rewards[ranked[0].key]), count

    def search(self, ctx, predict) -> tuple[list, dict, int]:
        """Algorithm 2; returns the final parents by predicted reward (best first), the
        rewards by key and the number of predictions."""
        space, rng = ctx.space, ctx.rng
        parents = self._initial(space, rng)
        rewards = dict(zip([a.key for a in parents], predict(parents)))
        count = len(parents)
        for _ in range(self.iterations):
            children = [self._child(space, p, parents, rng) for p in parents]
            fresh = [c for c in children if c.key not in rewards]
            if fresh:
                rewards.update(zip([a.key for a in fresh], predict(fresh)))
                count += len(fresh)
            merged = {a.key: a for a in children + parents}  # Children U Parents
            ranked = sorted(merged.values(), key=lambda a: rewards[a.key], reverse=True)
            parents = ranked[: self.population]
        return sorted(parents, key=lambda a: rewards[a.key], reverse=True), rewards, count

    def _initial(self, space, rng) -> list:
        out = {}
        for _ in range(self.population * 20):
            a = space.sample(rng)
            out.setdefault(a.key, a)
            if len(out) == self.population:
                break
        return list(out.values())

    def _child(self, space, parent, parents, rng):
        child = parent
        if self.crossover_prob and rng.random() < self.crossover_prob:
            child = space.crossover(child, parents[int(rng.integers(len(parents)))], rng)
        if rng.random() < self.mutation_prob:
            child = space.mutate(child, rng, self.mutation_rate)
        return child

    # ---- run -------------------------------------------------------------------------
    def run(self, ctx) -> SearchResult:
        t0 = time.perf_counter()
        asked = self.collect(ctx)
        trained = fit_on(ctx, ctx.history, ctx.metric)
        if trained < 2:
            ctx.log(f"ees: only {trained} successful evaluations; no predictor to search with")
            self._spend(ctx, [])
            best_ev = ctx.best()
            return SearchResult(best=best_ev.arch if best_ev else None, info={"trained": trained})
        predictor = default_predictor(ctx)
        t1 = time.perf_counter()
        ranked, rewards, count = self.search(ctx, lambda archs: predictor.predict(encode(ctx, archs)))
        pick, reward = ranked[0], float(rewards[ranked[0].key])
        search_s = time.perf_counter() - t1
        ctx.log(f"ees: best predicted {ctx.metric} {reward:.2f} after {count} predictions in {search_s:.1f}s")
        info = {"samples_asked": asked, "trained_for_predictor": trained, "predicted": reward,
                "predictions": count, "search_seconds": search_s, "predictions_per_second": count / max(search_s, 1e-9)}
        checked = self._top_k(ctx, ranked)  # the predicted top-k, trained in full, never cut short
        self._spend(ctx, ranked)
        best_ev = ctx.best()
        best = best_ev.arch if best_ev is not None else pick
        info["top_k_checked"] = [a.key for a in checked]
        info["chosen_from"] = ("predicted top-k" if best.key in info["top_k_checked"] else
                               "base architecture" if self.base is not None and best.key == ctx.space.make(
                                   dict(self.base)).key else "predictor samples")
        if best.key != pick.key:
            known = next((e for e in ctx.history if e.key == pick.key), None)
            info["predicted_pick"] = {"key": pick.key, "genome": pick.genome, "predicted": reward,
                                      "metrics": dict(known.metrics) if known is not None else {}}
        metrics, state = self._final(ctx, best)
        info["final"] = metrics
        info["global_search_seconds"] = time.perf_counter() - t0
        return SearchResult(best=best, info=info, metrics=metrics, state_dict=state)

    def _top_k(self, ctx, ranked: list) -> list:
        """Train the ``top_k`` best-predicted architectures not evaluated yet (the GS
        answer is checked, not taken on the predictor's word); returns them."""
        evaluated = {e.key for e in ctx.history}
        todo = [a for a in ranked if a.key not in evaluated][: min(self.top_k, ctx.remaining)]
        if todo:
            ctx.evaluate(todo, stop=False)
        return todo

    def _spend(self, ctx, queue: list) -> None:
        """Spend the budget left on ``queue`` (in order, skipping evaluated ones), then on
        fresh draws from the sampler, so that a budget of N buys N distinct evaluations."""
        sampler = self._sampler(ctx)
        step = self.batch_size or getattr(sampler, "per_iteration", 10)
        evaluated = {e.key for e in ctx.history}
        todo = [a for a in queue if a.key not in evaluated]
        while ctx.remaining > 0 and todo:
            batch, todo = todo[: min(step, ctx.remaining)], todo[min(step, ctx.remaining):]
            sampler.tell(ctx.evaluate(batch))
        while ctx.remaining > 0:
            if getattr(sampler, "exhausted", False):
                archs = [ctx.space.sample(ctx.rng) for _ in range(min(step, ctx.remaining))]
            else:
                archs = sampler.ask(min(step, ctx.remaining))
            evals = ctx.evaluate(archs)
            if not getattr(sampler, "exhausted", False):
                sampler.tell(evals)

    def _final(self, ctx, best) -> tuple[dict, object]:
        """The reported metrics of ``best``: retrained for ``final_epochs`` if set, else its
        evaluation (the last step of Algorithm 2)."""
        if self.final_epochs:
            from nascore.api import build_seeded
            from nascore.api import evaluation_seed

            task = ctx.task
            seed = evaluation_seed(ctx.seed, best.key)
            model = build_seeded(ctx.space, best, task, seed)  # the weights the train evaluator would start from
            trainer = ctx.trainer(epochs=self.final_epochs)
            fit = trainer.fit(model, task, seed=seed)
            metrics = {"valid_accuracy": trainer.accuracy(model, task.valid),
                       "test_accuracy": trainer.accuracy(model, task.test),
                       **ctx.space.cost(best, task), "train_seconds": fit.seconds, "epochs": fit.epochs}
            return metrics, {k: v.detach().cpu() for k, v in model.state_dict().items()}
        evals = ctx.evaluate([best], stop=False)  # the answer is trained in full, never cut short
        if evals and evals[0].status == OK:
            return dict(evals[0].metrics), None
        return {}, None

