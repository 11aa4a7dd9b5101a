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
  network equivalent to one already evaluated (isomorphic cells, dead edges).
"""

from __future__ import annotations

import attrs
import numpy as np

from ..arch import Choice
from ..params import in_range, one_of, param
from ..results import OK, SearchResult


def _score(ev, metric):
    value = ev.metric(metric) if ev.status == OK else None
    return float("-inf") if value is None else float(value)


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
    architectures from the sampler and climbs from the best of them."""

    initial: int = param(10, help="sampler draws at the start and at each restart (the climb starts from their best)",
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

    def run(self, ctx) -> SearchResult:
        space = ctx.space
        canon = space.canonical if self.deduplicate else (lambda a: a.key)
        self._seen: set[str] = {canon(e.arch) for e in ctx.history}
        self._canon = canon
        restarts = 0
        while ctx.remaining > 0:
            start = self._draw(ctx, min(self.initial, ctx.remaining))
            if not start:
                break
            restarts += 1
            self._climb(ctx, max(start, key=lambda e: _score(e, ctx.metric)))
        best = ctx.best()
        return SearchResult(best.arch if best else None, info={"restarts": restarts})

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

    def _climb(self, ctx, current) -> None:
        while ctx.remaining > 0:
            queue = self._order(ctx, self._fresh(ctx.space.neighbors(current.arch)))
            improved = False
            for i in range(0, len(queue), self.batch_size):
                if ctx.remaining <= 0:
                    return
                batch = self._fresh(queue[i:i + self.batch_size])  # a batch may hold an equivalent of a query
                evals = self._evaluate(ctx, batch)
                better = [e for e in evals if _score(e, ctx.metric) > _score(current, ctx.metric)]
                if better:
                    current = max(better, key=lambda e: _score(e, ctx.metric))
                    improved = True
                    break
            if not improved:
                return
