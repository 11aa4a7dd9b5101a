"""Sample generation for the accuracy predictor (STEERAGE section 4.4.2, Algorithm 1).

:class:`SobolSampler` draws a scrambled Sobol sequence (Sobol 1967; quasi Monte-Carlo)
over the space's unit cube and decodes each point with ``space.from_vector``: the pool
covers the space more evenly than random sampling does (lower discrepancy).

:class:`IterativeSampleSelection` is Algorithm 1 as an ask/tell sampler:

1. ``archPool`` = ``pool_size`` (2048) Sobol samples of the space;
2. the first ``per_iteration`` (100) architectures asked are drawn at random from the
   pool; once their validation accuracies are told, the predictor is fitted;
3. for ``iterations`` (I_max = 3) rounds: predict every pool architecture not trained
   yet, hand out the ``per_iteration`` with the highest predicted accuracy, and refit the
   predictor on all observations once they are told.

It fits ``ctx.predictor`` (a :class:`~.predictor.BoostedTreesPredictor` when the run
configures none) on the encoding given by ``ctx.encoder`` (the unit-cube vector when
none), so the optimizer that drives it ends with Algorithm 1's output: the predictor.
The score it fits is the run's feedback metric: ``cv_accuracy`` (k-fold accuracy, see
:mod:`.robust`) with the ``cv-train`` evaluator, the default for tabular data in
STEERAGE's benchmarks; ``valid_accuracy`` otherwise.

The pool need not be Sobol's: ``pool_sampler`` names any registered sampler (a table
``{name = "tnas", ...}``) that fills it, and ``pool_refresh`` asks that sampler for new
candidates before each selection round, after telling it every result, so a learning
sampler (TNAS's VAE) proposes and the predictor picks -- a composition the paper does not
have, off by default.
"""

from __future__ import annotations

import warnings

import attrs
import numpy as np
from scipy import sparse

import nascore
from nascore.api import ConfigError
from nascore.api import in_range
from nascore.api import OK


def sobol_points(dim: int, n: int, seed: int, scramble: bool = True) -> np.ndarray:
    """``n`` points of a (scrambled) Sobol sequence in ``[0, 1)^dim``."""
    from scipy.stats import qmc

    engine = qmc.Sobol(d=dim, scramble=scramble, seed=seed)
    with warnings.catch_warnings():  # n need not be a power of two
        warnings.simplefilter("ignore", UserWarning)
        return engine.random(n)


def sobol_pool(space, n: int, seed: int, scramble: bool = True) -> list:
    """Distinct architectures decoded from ``n`` Sobol points, in sequence order."""
    rng = np.random.default_rng(seed)
    pool, seen = [], set()
    for u in sobol_points(space.num_dimensions, n, seed, scramble):
        arch = space.from_vector(u, rng)
        if arch.key not in seen:
            seen.add(arch.key)
            pool.append(arch)
    return pool


class Featurizer:
    """Features of architectures for the predictor: ``ctx.encoder`` (fitted once, on a
    broad reference set such as the Sobol pool) or the space's unit-cube vector."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.fitted = False

    def fit(self, archs) -> "Featurizer":
        if self.ctx.encoder is not None and not self.fitted:
            self.ctx.encoder.fit(list(archs))
        self.fitted = True
        return self

    def __call__(self, archs) -> np.ndarray:
        archs = list(archs)
        space = self.ctx.space
        if self.ctx.encoder is None:
            return np.stack([space.to_vector(a) for a in archs]) if archs else np.zeros((0, space.num_dimensions))
        if not self.fitted:
            self.fit(archs)
        X = self.ctx.encoder.transform(archs)
        return X.toarray() if sparse.issparse(X) else np.asarray(X, dtype=float)


def featurizer(ctx) -> Featurizer:
    """The run's shared :class:`Featurizer` (kept in steerage's state area of the context)."""
    state = ctx.state("steerage")
    if "featurizer" not in state:
        state["featurizer"] = Featurizer(ctx)
    return state["featurizer"]


def encode(ctx, archs) -> np.ndarray:
    """Predictor features of ``archs`` (see :class:`Featurizer`)."""
    return featurizer(ctx)(archs)


def default_predictor(ctx):
    """``ctx.predictor``, or (the run configures none) a boosted-trees predictor (section
    4.4.1) kept in steerage's state area, shared by the sampler and EES."""
    if ctx.predictor is not None:
        return ctx.predictor
    state = ctx.state("steerage")
    if "predictor" not in state:
        from .predictor import BoostedTreesPredictor

        state["predictor"] = BoostedTreesPredictor(random_state=int(ctx.seed))
    return state["predictor"]


def fit_on(ctx, evaluations, metric: str = "valid_accuracy"):
    """Fit the run's predictor on the successful ``evaluations``; returns the count."""
    ok = [e for e in evaluations if e.status == OK and e.metric(metric) is not None]
    if len(ok) < 2:
        return len(ok)
    predictor = default_predictor(ctx)
    predictor.fit(encode(ctx, [e.arch for e in ok]), np.array([e.metric(metric) for e in ok], dtype=float))
    return len(ok)


@attrs.define(slots=False)
class SobolSampler:
    """Scrambled Sobol sequence over the unit cube, decoded to architectures."""

    pool_size: int = nascore.param(2048, help="points drawn up front (more are drawn when they run out)",
                                   validator=in_range(1))
    scramble: bool = nascore.param(True, help="Owen-scramble the sequence (seeded by the run)")

    def setup(self, ctx) -> None:
        self.space = ctx.space
        self._seed = int(ctx.rng.integers(2**31 - 1))
        self._pool = sobol_pool(self.space, self.pool_size, self._seed, self.scramble)
        self._next = 0
        self._draws = 1

    def pool(self) -> list:
        return list(self._pool)

    def ask(self, n: int) -> list:
        if not hasattr(self, "_pool"):  # the pool is drawn in setup(ctx), from the run's seed
            raise RuntimeError("sampler used before setup(ctx)")
        while self._next + n > len(self._pool):
            self._draws += 1
            seen = {a.key for a in self._pool}
            more = sobol_pool(self.space, self.pool_size * self._draws, self._seed, self.scramble)
            fresh = [a for a in more if a.key not in seen]
            if not fresh:
                fresh = [self.space.sample(np.random.default_rng(self._seed + self._draws)) for _ in range(n)]
            self._pool.extend(fresh)
        out = self._pool[self._next:self._next + n]
        self._next += n
        return out

    def tell(self, evaluations) -> None:
        """A Sobol sequence is not adaptive."""


@attrs.define(slots=False)
class IterativeSampleSelection:
    """Algorithm 1 of the STEERAGE paper: iterative sample selection and predictor training."""

    pool_size: int = nascore.param(2048, help="Sobol pool size (count)", validator=in_range(1))
    per_iteration: int = nascore.param(100, help="architectures trained per iteration (iterCount)",
                                       validator=in_range(1))
    iterations: int = nascore.param(3, help="selection iterations after the random batch (I_max)",
                                    validator=in_range(0))
    scramble: bool = nascore.param(True, help="Owen-scramble the Sobol pool")
    pool_sampler: dict | None = nascore.param(None, help="sampler that fills the pool, as a table "
                                                         "{name = ..., its parameters} (none: the Sobol pool)")
    pool_refresh: int = nascore.param(0, help="candidates asked of pool_sampler before each selection round, "
                                              "after it is told every result (0: a fixed pool)",
                                      validator=in_range(0))

    def setup(self, ctx) -> None:
        self.ctx = ctx
        seed = int(ctx.rng.integers(2**31 - 1))
        self._rng = np.random.default_rng(seed)
        self._source = self._build_source(ctx)
        if self._source is None:
            self._pool = sobol_pool(ctx.space, self.pool_size, seed, self.scramble)
        else:
            self._pool = self._fresh(self._source.ask(self.pool_size), set())
        featurizer(ctx).fit(self._pool)
        self._used: set[str] = set()
        self._queue: list = []
        self._observed: dict = {}
        self.rounds = 0

    def _build_source(self, ctx):
        """The sampler named by ``pool_sampler``, set up on ``ctx`` (None: Sobol)."""
        if self.pool_sampler is None:
            if self.pool_refresh:
                raise ConfigError("sampler 'iterative-selection': pool_refresh needs a pool_sampler")
            return None
        table = dict(self.pool_sampler)
        name = table.pop("name", None)
        if not isinstance(name, str):
            raise ConfigError("sampler 'iterative-selection': pool_sampler needs a name, "
                              "e.g. {name = \"tnas\"}")
        source = nascore.create("sampler", name, **table)
        source.setup(ctx)
        return source

    @staticmethod
    def _fresh(archs, seen: set) -> list:
        """``archs`` without repeats and without keys in ``seen``, in order."""
        out = []
        for arch in archs:
            if arch.key not in seen:
                seen.add(arch.key)
                out.append(arch)
        return out

    def _grow_pool(self, n: int) -> int:
        """Add up to ``n`` new candidates from the pool sampler; returns how many."""
        fresh = self._fresh(self._source.ask(n), {a.key for a in self._pool})
        self._pool.extend(fresh)
        return len(fresh)

    @property
    def exhausted(self) -> bool:
        """True once the random batch and the ``iterations`` rounds are handed out."""
        return self.rounds > self.iterations and not self._queue

    def _metric(self) -> str:
        """The score Algorithm 1 fits the predictor on: the run's feedback metric (with the
        ``cv-train`` evaluator, ``cv_accuracy``: k-fold accuracy on train + valid)."""
        return getattr(self.ctx, "metric", None) or "valid_accuracy"

    def _remaining(self) -> list:
        return [a for a in self._pool if a.key not in self._used]

    def _next_round(self) -> None:
        if self._source is not None and self.pool_refresh and self.rounds > 0:
            self._grow_pool(self.pool_refresh)
        rest = self._remaining()
        if not rest:
            if self._source is not None:
                self._grow_pool(max(self.per_iteration, self.pool_refresh))
            else:
                self._pool.extend(sobol_pool(self.ctx.space, len(self._pool) * 2, int(self._rng.integers(2**31)),
                                             self.scramble))
            rest = self._remaining() or [self.ctx.space.sample(self._rng)]
        if self.rounds == 0 or fit_on(self.ctx, self._observed.values(), self._metric()) < 2:
            idx = self._rng.permutation(len(rest))[: self.per_iteration]
            chosen = [rest[i] for i in idx]
        else:
            scores = np.asarray(default_predictor(self.ctx).predict(encode(self.ctx, rest)), dtype=float)
            order = np.argsort(-scores, kind="stable")[: self.per_iteration]
            chosen = [rest[i] for i in order]
        self._queue.extend(chosen)
        self.rounds += 1

    def ask(self, n: int) -> list:
        if not hasattr(self, "_pool"):  # the pool is drawn in setup(ctx), from the run's seed
            raise RuntimeError("sampler used before setup(ctx)")
        out = []
        while len(out) < n:
            if not self._queue:
                self._next_round()
            arch = self._queue.pop(0)
            self._used.add(arch.key)
            out.append(arch)
        return out

    def tell(self, evaluations) -> None:
        """Record validation accuracies; the predictor is refitted on all of them when
        the next round is selected (Algorithm 1, step 5)."""
        evaluations = list(evaluations)
        for ev in evaluations:
            self._observed[ev.key] = ev
        if self._source is not None:
            self._source.tell(evaluations)
