"""The ``tnas`` sampler: the epsilon-mixture of Eq. 11 with the learned distribution of Eq. 1.

``Gamma(alpha) = (1 - eps) * U(alpha) + eps * p_theta(alpha|z)`` (Eq. 11, Section 4.2 of
the TNAS paper).  ``eps`` starts at 0 (purely random, no VAE yet); after round ``t`` of
the distribution update (the VAE retrained, warm-started, every ``retrain_every`` new
results) it is ``min(1, eps_init + t * eps_inc)`` -- the paper's ``eps_inc`` moves the
sampler "from purely random distribution to absolute VAE generation" (Section 5.3).
"""

from __future__ import annotations

import numpy as np
import attrs

from nascore import param
from nascore.api import resolve_device
from nascore.api import ConfigError
from nascore.api import in_range, one_of


@attrs.define
class VAESettings:
    """Parameters of the VAE and of its update rule (shared by the sampler and the optimizers)."""

    d_model: int = param(32, help="width of the transformer blocks (Eqs. 3-8)", validator=in_range(4))
    heads: int = param(2, help="attention heads per block (nhead)", validator=in_range(1))
    vae_layers: int = param(1, help="transformer blocks in the encoder and in the decoder", validator=in_range(1))
    latent_dim: int = param(8, help="dimension of z", validator=in_range(1))
    beta: float = param(1.0, help="weight of the KL term in the loss (Eq. 2)", validator=in_range(0.0))
    vae_lr: float = param(3e-3, help="Adam learning rate of the VAE", validator=in_range(0.0, low_open=True))
    vae_steps: int = param(30, help="Adam steps per distribution update (warm-started, Eq. 1)", validator=in_range(1))
    vae_batch_size: int = param(32, help="architectures per VAE minibatch", validator=in_range(1))
    top_fraction: float = param(0.1, help="share of the history the VAE learns from (top) or the rank scale (rank)",
                                validator=in_range(0.0, 1.0, low_open=True))
    weighting: str = param("top", help="'top': best top_fraction equally; 'rank': exp(-rank/(top_fraction*N))",
                           validator=one_of("top", "rank"))
    min_train: int = param(5, help="fewest architectures the VAE trains on", validator=in_range(1))
    temperature: float = param(1.0, help="softmax temperature of p_theta(alpha|z) when sampling (0: argmax)",
                               validator=in_range(0.0))
    vae_device: str = param("cpu", help="torch device of the VAE: cpu, cuda or auto")

    def vae_kwargs(self) -> dict:
        return dict(d_model=self.d_model, heads=self.heads, layers=self.vae_layers, latent_dim=self.latent_dim,
                    beta=self.beta, lr=self.vae_lr, steps=self.vae_steps, batch_size=self.vae_batch_size,
                    top_fraction=self.top_fraction, min_train=self.min_train, weighting=self.weighting,
                    temperature=self.temperature, device=str(resolve_device(self.vae_device)))

    def check_heads(self):
        if self.d_model % self.heads:
            raise ConfigError(f"d_model ({self.d_model}) must be divisible by heads ({self.heads})")


@attrs.define
class TNASSampler(VAESettings):
    """Eq. 11 mixture of uniform sampling and a transformer VAE that learns (Eq. 1) from
    the metric of the evaluated architectures (TNAS paper, Sections 3-4)."""

    eps_inc: float = param(0.3, help="increase of eps per distribution round (Eq. 11), capped at 1",
                           validator=in_range(0.0, 1.0))
    eps_init: float = param(0.0, help="eps after the first VAE round, before eps_inc accumulates",
                            validator=in_range(0.0, 1.0))
    retrain_every: int = param(10, help="retrain the VAE after this many new results (k)", validator=in_range(1))
    metric: str = param("valid_accuracy", help="metric the distribution learns from")
    mode: str = param("max", help="'max' or 'min': whether a larger metric is better", validator=one_of("max", "min"))
    unique: bool = param(True, help="ask only architectures not asked or told before")
    max_tries: int = param(20, help="VAE redraw rounds to find unseen architectures before falling back to U",
                           validator=in_range(1))
    redraw_heat: float = param(1.0, help="temperature multiplier per redraw round when p_theta's draws were all "
                                          "seen (1: redraw at the same temperature)", validator=in_range(1.0))

    space = attrs.field(default=None, init=False, repr=False)
    distribution = attrs.field(default=None, init=False, repr=False)
    history: list = attrs.field(factory=list, init=False, repr=False)
    stats: dict = attrs.field(factory=dict, init=False, repr=False)
    _rng = attrs.field(default=None, init=False, repr=False)
    _seen: set = attrs.field(factory=set, init=False, repr=False)
    _pending: int = attrs.field(default=0, init=False, repr=False)

    # ------------------------------------------------------------------ setup
    def setup(self, ctx, rng: np.random.Generator | None = None) -> "TNASSampler":
        """Bind to ``ctx.space`` and a generator from ``ctx.rng`` (or ``setup(space, rng)``)."""
        from nascore.api import SearchSpace

        from .distribution import LearnedDistribution
        from .vocabulary import ArchitectureVocabulary

        self.check_heads()
        if isinstance(ctx, SearchSpace):
            space, base = ctx, rng if rng is not None else np.random.default_rng(0)
        else:
            space, base = ctx.space, rng if rng is not None else getattr(ctx, "rng", None)
            if base is None:
                base = np.random.default_rng(getattr(ctx, "seed", 0))
        self.space = space
        self._rng = np.random.default_rng(base.integers(2**63))
        vocab = ArchitectureVocabulary(space)
        seed = int(self._rng.integers(2**31))
        self.distribution = LearnedDistribution(vocab, seed=seed, **self.vae_kwargs())
        self.history, self._seen, self._pending = [], set(), 0
        self.stats = {"asked_model": 0, "asked_uniform": 0, "fallback_uniform": 0, "rounds": 0}
        return self

    @property
    def epsilon(self) -> float:
        """Current eps of Eq. 11: 0 before the first round, then ``eps_init + t * eps_inc``."""
        rounds = 0 if self.distribution is None else self.distribution.rounds
        if rounds == 0:
            return 0.0
        return min(1.0, self.eps_init + rounds * self.eps_inc)

    # ------------------------------------------------------------------ ask/tell
    def ask(self, n: int) -> list:
        """``n`` architectures from Gamma (Eq. 11), unseen ones only when ``unique``."""
        if self.space is None:
            raise ConfigError("call setup(ctx) on the tnas sampler before ask()")
        if n <= 0:
            return []
        from_model = self._rng.random(n) < self.epsilon
        model = iter(self._draw_model(int(from_model.sum())))
        out = []
        for use_model in from_model:
            arch = next(model, None) if use_model else None
            if arch is None:
                arch = self._draw_uniform()
                self.stats["fallback_uniform" if use_model else "asked_uniform"] += 1
            else:
                self.stats["asked_model"] += 1
            self._seen.add(arch.key)
            out.append(arch)
        return out

    def _draw_model(self, n: int) -> list:
        """``n`` draws of p_theta; with ``unique``, seen ones are redrawn, each redraw
        round at a temperature ``redraw_heat`` times higher (a concentrated p_theta then
        explores around its modes instead of repeating them)."""
        out, keys = [], set()
        temperature = self.temperature
        for _ in range(self.max_tries if n else 0):
            for arch in self.distribution.sample(2 * (n - len(out)), temperature):
                if self.unique and (arch.key in self._seen or arch.key in keys):
                    continue
                keys.add(arch.key)
                out.append(arch)
                if len(out) == n:
                    return out
            temperature *= self.redraw_heat
        return out

    def _draw_uniform(self):
        arch = self.space.sample(self._rng)
        for _ in range(self.max_tries * 50 if self.unique else 0):
            if arch.key not in self._seen:
                break
            arch = self.space.sample(self._rng)
        return arch

    def tell(self, evaluations, group=None) -> None:
        """Record results; every ``retrain_every`` new ones run a round of Eq. 1.

        ``group`` labels results whose metric is comparable only with the others of the
        same label (one weight-sharing round: the same shared weights scored them); the
        VAE's top share is then cut within each group (:func:`training_weights`).  Mixing
        grouped and ungrouped results is refused."""
        if self.history and (group is None) != (self.history[-1][2] is None):
            raise ConfigError("tnas sampler: results told with a group label and without one cannot be mixed "
                              "(their metrics are on different scales)")
        for ev in evaluations:
            self._seen.add(ev.key)
            value = ev.metric(self.metric) if ev.ok else None
            if value is None:
                continue
            self.history.append((ev.arch, float(value) if self.mode == "max" else -float(value), group))
            self._pending += 1
        if self._pending >= self.retrain_every and len(self.history) >= 1:
            self.update()

    def update(self) -> dict:
        """One round of Eq. 1 on the whole history (raises EmptyHistoryError on none)."""
        archs = [a for a, _, _ in self.history]
        groups = None if self.history and self.history[-1][2] is None else [g for _, _, g in self.history]
        stats = self.distribution.update(archs, [m for _, m, _ in self.history], groups)
        self._pending = 0
        self.stats["rounds"] = self.distribution.rounds
        return stats

    def sample_model(self, n: int) -> list:
        """``n`` draws of ``p_theta`` alone (used to seed evolution, Section 4.2)."""
        return self.distribution.sample(n)
