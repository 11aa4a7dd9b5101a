"""Guided local search: first-improvement hill climbing whose neighbours are queried in
the order of a cheap model of what has been good so far, with isomorphism-aware
deduplication and restarts from the sampler.

Composed from the field's parts, none specific to one space:

* local search over one-dimension neighbours with restarts (White, Zela, Ru, Liu & Hutter,
  "How powerful are performance predictors...", 2021; the ``local-search`` optimizer);
* BANANAS-style ranking (White, Neiswanger & Savani, AAAI 2021, Section 3): many candidates,
  a fast model ranks them, only the best are queried.  ``rank = "density-ratio"`` ranks by
  TPE's acquisition (Bergstra et al., NeurIPS 2011, Section 4): per dimension, the log
  ratio of the value's frequency among the best ``gamma`` fraction of the evaluations
  to its frequency among the rest (add-``alpha`` smoothing); refitting is counting, so a
  run costs about what plain local search costs.  ``rank = "predictor"`` ranks by the run's
  ``[encoder]``/``[predictor]`` (default onehot + a small random forest); ``"random"`` is
  plain local search;
* deduplication through :meth:`~nascore.arch.SearchSpace.canonical`: no query is spent on a
  network equivalent to one already evaluated (isomorphic cells, dead edges);
* restarts: ``restart = "sample"`` climbs again from the best of ``initial`` new sampler
  draws; ``restart = "unused"`` reuses the draws already paid for: it adds ``restart_draws``
  new draws to those not yet climbed from and climbs from the best of them that differs
  from every local optimum found in at least a ``distance`` fraction of the dimensions
  (the best of them all when none does), so a restart costs ``restart_draws`` queries
  instead of ``initial`` and tends to leave the basins already climbed.

``SearchResult.info["climbs"]`` lists every climb: the score it started from and ended at,
the keys of both, the queries it spent, the run's queries when it ended, and whether it
ended because no unseen neighbour is better (``local_optimum``: a local optimum, or a cell
next to a better one evaluated earlier, whose basin is then already known) rather than at
the end of the budget.
"""

from __future__ import annotations

import math

import attrs
import numpy as np

from ..arch import Choice
from ..params import in_range, one_of, param
from ..results import OK, SearchResult


def _score(ev, metric):
    value = ev.metric(metric) if ev.status == OK else None
    return float("-inf") if value is None else float(value)


def _finite(value: float):
    return value if math.isfinite(value) else None  # a failed evaluation has no score


def value_codes(space, archs) -> np.ndarray:
    """``(len(archs), #dims)`` integer codes: a Choice's option index, else the value's
    unit-cube position binned into ``min(size, 10)`` bins."""
    dims = list(space.dimensions())
    out = np.zeros((len(archs), len(dims)), dtype=np.int64)
    for i, a in enumerate(archs):
        g = a.genome
        for j, d in enumerate(dims):
            if isinstance(d, Choice):
                out[i, j] = d.index(g[d.name])
            else:
                bins = min(d.size or 10, 10)
                out[i, j] = min(int(d.to_unit(g[d.name]) * bins), bins - 1)
    return out


def density_ratio_scores(space, evaluated, scores, candidates, gamma: float, alpha: float) -> np.ndarray:
    """TPE's acquisition with independent per-dimension categoricals: for each candidate
    the sum over dimensions of ``log l(v) - log g(v)``, where ``l`` and ``g`` are the
    smoothed value frequencies among the best ``gamma`` fraction of ``evaluated`` (by
    ``scores``) and among the rest."""
    if not candidates:
        return np.zeros(0)
    codes = value_codes(space, evaluated)
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    n_good = min(max(2, int(gamma * len(order))), len(order))
    good, bad = codes[order[:n_good]], codes[order[n_good:]]
    cand = value_codes(space, candidates)
    total = np.zeros(len(candidates))
    for j in range(codes.shape[1]):
        k = int(max(codes[:, j].max(), cand[:, j].max())) + 1
        lg = np.bincount(good[:, j], minlength=k) + alpha
        bg = np.bincount(bad[:, j], minlength=k) + alpha
        total += (np.log(lg / lg.sum()) - np.log(bg / bg.sum()))[cand[:, j]]
    return total


@attrs.define(slots=False)
class GuidedLocalSearch:
    """First-improvement local search whose unseen, non-equivalent neighbours are queried in
    ranked order (density ratio, a predictor, or random); a restart draws ``initial`` new
    architectures from the sampler and climbs from the best of them (``restart = "unused"``:
    from the best draw not yet climbed from, away from the local optima found)."""

    initial: int = param(10, help="sampler draws at the start and, with restart=sample, at each restart "
                                        "(the climb starts from their best)",
                         validator=in_range(1))
    rank: str = param("density-ratio", help="neighbour order: density-ratio (TPE's l/g), predictor, or random",
                      validator=one_of("density-ratio", "predictor", "random"))
    gamma: float = param(0.25, help="density-ratio: fraction of the evaluations counted as good",
                         validator=in_range(0.0, 1.0, low_open=True))
    alpha: float = param(1.0, help="density-ratio: add-alpha smoothing of the value counts",
                         validator=in_range(0.0, low_open=True))
    batch_size: int = param(1, help="neighbours evaluated per round (1: strict first improvement)",
                            validator=in_range(1))
    deduplicate: bool = param(True, help="skip candidates equivalent (space.canonical) to an evaluated one")
    trees: int = param(20, help="rank=predictor without a [predictor] table: trees of the random forest",
                       validator=in_range(1))
    restart: str = param("sample", help="after a local optimum: sample (climb from the best of `initial` new sampler "
                                        "draws) or unused (add `restart_draws` new draws to the draws not yet "
                                        "climbed from and climb from the best that is `distance` away from every "
                                        "local optimum found)", validator=one_of("sample", "unused"))
    restart_draws: int = param(1, help="restart=unused: new sampler draws evaluated at each restart (when none are "
                                       "left unused and this is 0: `initial`)", validator=in_range(0))
    distance: float = param(0.8, help="restart=unused: fraction of the dimensions in which a preferred start differs "
                                      "from every local optimum found (0: just the best unused draw)",
                            validator=in_range(0.0, 1.0))

    def run(self, ctx) -> SearchResult:
        space = ctx.space
        canon = space.canonical if self.deduplicate else (lambda a: a.key)
        self._seen: set[str] = {canon(e.arch) for e in ctx.history}
        self._canon = canon
        self._unused: list = []   # restart=unused: draws not yet climbed from
        self._optima: list = []   # where climbs ended with no unseen better neighbour
        climbs: list[dict] = []
        while ctx.remaining > 0:
            start = self._start(ctx, first=not climbs)
            if start is None:
                break
            used = ctx.used
            end, optimum = self._climb(ctx, start)
            if optimum:
                self._optima.append(end.arch)
            climbs.append({"start": _finite(_score(start, ctx.metric)), "end": _finite(_score(end, ctx.metric)),
                           "start_key": start.arch.key, "end_key": end.arch.key,
                           "queries": ctx.used - used, "used_after": ctx.used, "local_optimum": optimum})
        best = ctx.best()
        return SearchResult(best.arch if best else None, info={"restarts": len(climbs), "climbs": climbs})

    # ---- helpers -----------------------------------------------------------------------
    def _fresh(self, archs) -> list:
        out, local = [], set()
        for a in archs:
            c = self._canon(a)
            if c not in self._seen and c not in local:
                local.add(c)
                out.append(a)
        return out

    def _evaluate(self, ctx, archs) -> list:
        evals = ctx.evaluate(archs)
        ctx.sampler.tell(evals)
        for e in evals:
            self._seen.add(self._canon(e.arch))
        return evals

    def _draw(self, ctx, n: int) -> list:
        """``n`` new (non-equivalent) architectures from the sampler, evaluated; falls back
        to uniform draws from the space when the sampler keeps repeating itself."""
        got: list = []
        for attempt in range(50):
            source = ctx.sampler.ask(n - len(got)) if attempt < 25 else [ctx.space.sample(ctx.rng) for _ in range(n - len(got))]
            got += self._evaluate(ctx, self._fresh(source)[: min(n - len(got), ctx.remaining)])
            if len(got) >= n or ctx.remaining <= 0:
                break
        if not got and ctx.remaining > 0:  # every class seen: spend what is left on new keys
            known = {e.key for e in ctx.history}
            got = ctx.evaluate([a for a in (ctx.space.sample(ctx.rng) for _ in range(20 * n)) if a.key not in known][:n])
        return got

    def _start(self, ctx, first: bool):
        """The evaluation the next climb starts from (None: nothing new can be drawn)."""
        if self.restart == "sample" or first:
            n = self.initial
        else:
            n = self.restart_draws or (0 if self._unused else self.initial)
        drawn = self._draw(ctx, min(n, ctx.remaining)) if n and ctx.remaining > 0 else []
        if self.restart == "sample":
            return max(drawn, key=lambda e: _score(e, ctx.metric)) if drawn else None
        self._unused += drawn
        if not self._unused:
            return None
        pool = self._unused
        need = math.ceil(self.distance * len(list(ctx.space.dimensions())) - 1e-9)
        if need and self._optima:
            optima = value_codes(ctx.space, self._optima)
            codes = value_codes(ctx.space, [e.arch for e in pool])
            apart = (codes[:, None, :] != optima[None, :, :]).sum(axis=2).min(axis=1)
            pool = [e for e, d in zip(pool, apart) if d >= need] or pool
        start = max(pool, key=lambda e: _score(e, ctx.metric))
        self._unused.remove(start)
        return start

    def _order(self, ctx, candidates: list) -> list:
        if len(candidates) < 2 or self.rank == "random":
            return [candidates[i] for i in ctx.rng.permutation(len(candidates))]
        ok = [e for e in ctx.history if _score(e, ctx.metric) > float("-inf")]
        if len(ok) < 2:
            return candidates
        ys = [_score(e, ctx.metric) for e in ok]
        if self.rank == "density-ratio":
            scores = density_ratio_scores(ctx.space, [e.arch for e in ok], ys, candidates, self.gamma, self.alpha)
        else:
            encoder, predictor = self._model(ctx)
            encoder.fit([e.arch for e in ok] + candidates)
            predictor.fit(encoder.transform([e.arch for e in ok]), np.asarray(ys, dtype=float))
            scores = np.asarray(predictor.predict(encoder.transform(candidates)), dtype=float)
        return [candidates[int(i)] for i in np.argsort(-scores, kind="stable")]

    def _model(self, ctx):
        """The run's encoder and predictor; those the run does not configure are made
        here and kept in this optimizer's state area of the (read-only) context."""
        state = ctx.state("guided-local-search")
        encoder, predictor = ctx.encoder, ctx.predictor
        if encoder is None:
            if "encoder" not in state:
                from ..encoders import OneHotEncoder

                state["encoder"] = OneHotEncoder().set_space(ctx.space)
            encoder = state["encoder"]
        if predictor is None:
            if "predictor" not in state:
                from ..predictors import RandomForestPredictor

                state["predictor"] = RandomForestPredictor(n_estimators=self.trees, random_state=int(ctx.seed))
            predictor = state["predictor"]
        return encoder, predictor

    def _climb(self, ctx, current) -> tuple:
        """Climb from ``current``; returns where it ended and whether it ended because no
        unseen neighbour is better (False: the budget ran out first)."""
        while ctx.remaining > 0:
            queue = self._order(ctx, self._fresh(ctx.space.neighbors(current.arch)))
            improved = False
            for i in range(0, len(queue), self.batch_size):
                if ctx.remaining <= 0:
                    return current, False
                batch = self._fresh(queue[i:i + self.batch_size])  # a batch may hold an equivalent of a query
                evals = self._evaluate(ctx, batch)
                better = [e for e in evals if _score(e, ctx.metric) > _score(current, ctx.metric)]
                if better:
                    current = max(better, key=lambda e: _score(e, ctx.metric))
                    improved = True
                    break
            if not improved:
                return current, True
        return current, False
