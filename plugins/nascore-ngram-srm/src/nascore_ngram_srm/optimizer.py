"""``predictor-screening``: random search steered by the run's encoder and predictor.

The use the N-gram/SRM paper proposes for its predictor (Section 4.2, last paragraph;
Section 5): predict a network's accuracy from its structure so that fewer networks
are trained.  Each round samples a pool of candidates, encodes them (``ngram``),
ranks them with the predictor (``srm``) fitted on every architecture evaluated so far,
and trains the best few; a fraction is still drawn at random so the predictor keeps
seeing the whole space.  Works with any encoder/predictor pair of the registry.
"""

from __future__ import annotations

import attrs
import numpy as np

from nascore.api import ConfigError
from nascore.api import in_range, param
from nascore.api import OK, STOPPED, SearchResult


def training_set(history, metric: str, use_stopped: bool) -> tuple[list, np.ndarray]:
    """Architectures and targets: final ``metric`` of completed runs and, with
    ``use_stopped``, the SRM's ``predicted_accuracy`` of early-terminated ones."""
    archs, ys = [], []
    for ev in sorted(history, key=lambda e: e.key):  # independent of completion order
        if ev.status == OK:
            value = ev.metric(metric)
        elif ev.status == STOPPED and use_stopped:
            value = ev.metric("predicted_accuracy")
        else:
            value = None
        if value is not None and np.isfinite(value):
            archs.append(ev.arch)
            ys.append(float(value))
    return archs, np.asarray(ys)


@attrs.define(slots=False, eq=False)
class PredictorScreening:
    """Each round: sample ``pool`` candidates, rank them with encoder + predictor fitted
    on the evaluations so far, evaluate the ``batch_size`` best (``explore`` of them at
    random); the first ``warmup`` evaluations are random."""

    conformance = {"predictor": "srm", "params": {"pool": 30, "warmup": 5}}

    pool: int = param(200, help="candidates sampled and ranked per round", validator=in_range(1))
    batch_size: int = param(4, help="architectures evaluated per round", validator=in_range(1))
    warmup: int = param(8, help="random evaluations before the predictor is used", validator=in_range(2))
    explore: float = param(0.25, help="fraction of each batch drawn at random from the pool",
                           validator=in_range(0.0, 1.0))
    use_stopped: bool = param(True, help="train the predictor on stopped runs too (target: their predicted accuracy)")

    def run(self, ctx) -> SearchResult:
        if ctx.encoder is None or ctx.predictor is None:
            raise ConfigError("optimizer 'predictor-screening' needs an [encoder] and a [predictor] table")
        rounds = screened = 0
        while ctx.remaining > 0:
            k = min(self.batch_size, ctx.remaining)
            archs, ys = training_set(ctx.history, ctx.metric, self.use_stopped)
            if len(archs) < self.warmup:
                batch = ctx.sampler.ask(k)
            else:
                batch = self._screen(ctx, archs, ys, k)
                screened += len(batch)
            evals = ctx.evaluate(batch)
            ctx.sampler.tell(evals)
            rounds += 1
            if not evals:
                break
        best = ctx.best()
        return SearchResult(best.arch if best else None, info={"rounds": rounds, "screened": screened})

    def _screen(self, ctx, archs: list, ys: np.ndarray, k: int) -> list:
        known = {a.key for a in archs} | {e.key for e in ctx.history}
        pool, seen = [], set()
        for a in ctx.sampler.ask(self.pool):
            if a.key not in known and a.key not in seen:
                seen.add(a.key)
                pool.append(a)
        if len(pool) <= k:
            return pool or ctx.sampler.ask(k)
        ctx.encoder.fit(archs + pool)
        ctx.predictor.fit(ctx.encoder.transform(archs), ys)
        scores = np.asarray(ctx.predictor.predict(ctx.encoder.transform(pool)), dtype=float)
        n_random = int(round(self.explore * k))
        order = [int(i) for i in np.argsort(-scores, kind="stable")]
        chosen = order[: k - n_random]
        rest = order[k - n_random:]
        if n_random:
            chosen += [rest[int(i)] for i in ctx.rng.choice(len(rest), size=n_random, replace=False)]
        return [pool[i] for i in chosen]
