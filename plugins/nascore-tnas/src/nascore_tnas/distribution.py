"""The learned architecture distribution of TNAS (Section 3.1, Eq. 1).

``Gamma_t(alpha) <- Gamma(Gamma_{t-1}(alpha), Metric_{t-1}(alpha))``: the distribution at
round t is the VAE of round t-1 (warm start: same weights and optimizer state) trained
further on the architectures observed so far, weighted by their metric.  Two weightings
are offered: ``top`` trains on the best ``top_fraction`` of the history with equal
weight; ``rank`` trains on all of it with weight ``exp(-rank / (top_fraction * N))``.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch

from nascore.api import NascoreError

from .vae import ArchitectureVAE
from .vocabulary import ArchitectureVocabulary


class EmptyHistoryError(NascoreError, ValueError):
    """The VAE was asked to learn from no evaluated architectures."""


def training_weights(metrics, top_fraction: float, weighting: str, min_train: int = 1,
                     groups=None) -> np.ndarray:
    """Sampling weights of the history for one update of Eq. 1 (sum to 1).

    ``top``: the best ``max(min_train, ceil(top_fraction * N))`` share equally; ``rank``:
    ``exp(-rank / (top_fraction * N))`` over all of them (rank 0 = best).

    ``groups`` (one label per entry) marks metrics that are comparable only within their
    group -- the rounds of weight-sharing search, whose accuracies are measured with
    different shared weights.  Ranks are then taken within each group as quantiles
    ``q = rank_in_group / size_of_group``: ``top`` keeps each group's best
    ``ceil(top_fraction * size)`` (then, up to ``min_train``, the smallest quantiles, the
    latest group first on ties); ``rank`` weighs ``exp(-q / top_fraction)``.  One group
    gives exactly the ungrouped weights; any increasing transformation of one group's
    metrics (a z-score, an offset) leaves them unchanged."""
    m = np.asarray(metrics, dtype=float)
    n = len(m)
    if n == 0:
        raise EmptyHistoryError("the TNAS VAE needs at least one evaluated architecture to learn from")
    if weighting not in ("top", "rank"):
        raise ValueError(f"weighting must be 'top' or 'rank', got {weighting!r}")
    if groups is None:
        order = np.argsort(-m, kind="stable")
        rank = np.empty(n)
        rank[order] = np.arange(n)
        if weighting == "top":
            keep = min(n, max(min_train, math.ceil(top_fraction * n)))
            w = (rank < keep).astype(float)
        else:
            w = np.exp(-rank / max(top_fraction * n, 1e-9))
        return w / w.sum()
    labels = list(groups)
    if len(labels) != n:
        raise ValueError(f"{n} metrics but {len(labels)} group labels")
    last_seen = {g: i for i, g in enumerate(labels)}
    q, kept = np.empty(n), np.zeros(n, dtype=bool)
    for g in last_seen:
        idx = np.array([i for i, x in enumerate(labels) if x == g])
        order = idx[np.argsort(-m[idx], kind="stable")]
        q[order] = np.arange(len(idx)) / len(idx)
        kept[order[:math.ceil(top_fraction * len(idx))]] = True
    if weighting == "rank":
        w = np.exp(-q / max(top_fraction, 1e-9))
        return w / w.sum()
    if kept.sum() < min(min_train, n):
        fill = sorted((i for i in range(n) if not kept[i]), key=lambda i: (q[i], -last_seen[labels[i]], i))
        kept[fill[:min(min_train, n) - int(kept.sum())]] = True
    w = kept.astype(float)
    return w / w.sum()


#: a VAE this small (d_model 32, a few hundred rows) gains nothing from intra-op threads;
#: on a busy machine their spinning multiplied a 100-query run's CPU time by 10-20
SINGLE_THREAD_PARAMS = 200_000


@contextlib.contextmanager
def _one_thread(small: bool):
    """Run the block with one torch intra-op thread (the caller's count restored after)
    when ``small``: the kernels are too small to gain from splitting, and the VAE's
    weights and samples then do not depend on the machine's core count."""
    prev = torch.get_num_threads()
    if small and prev != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if torch.get_num_threads() != prev:
            torch.set_num_threads(prev)


class LearnedDistribution:
    """``p_theta(alpha)`` of Eq. 11: a warm-started :class:`ArchitectureVAE` plus its
    optimizer, updated from (architecture, metric) pairs by :meth:`update` (Eq. 1)."""

    def __init__(self, vocab: ArchitectureVocabulary, *, d_model=32, heads=2, layers=2,
                 latent_dim=8, beta=1.0, lr=3e-3, steps=100, batch_size=32,
                 top_fraction=0.2, min_train=5, weighting="top", temperature=1.0,
                 device="cpu", seed=0):
        self.vocab = vocab
        self.beta, self.steps, self.batch_size = beta, steps, batch_size
        self.top_fraction, self.min_train, self.weighting = top_fraction, min_train, weighting
        self.temperature = temperature
        self.device = torch.device(device)
        self.generator = torch.Generator(device="cpu").manual_seed(int(seed))
        self._np_rng = np.random.default_rng(int(seed))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            self.vae = ArchitectureVAE(vocab.mask, d_model=d_model, heads=heads, layers=layers,
                                       latent_dim=latent_dim).to(self.device)
        self.optimizer = torch.optim.Adam(self.vae.parameters(), lr=lr, foreach=True)
        self._small = self.device.type == "cpu" and sum(p.numel() for p in self.vae.parameters()) <= SINGLE_THREAD_PARAMS
        self.rounds = 0
        self.last_stats: dict = {}

    def update(self, archs, metrics, groups=None) -> dict:
        """One round of Eq. 1: ``steps`` Adam steps of the negative ELBO (Eq. 2) on
        minibatches drawn from the history with :func:`training_weights` (``groups``:
        metrics comparable only within a group, e.g. a weight-sharing round)."""
        if len(archs) == 0:
            raise EmptyHistoryError("the TNAS VAE needs at least one evaluated architecture to learn from")
        if len(archs) != len(metrics):
            raise ValueError(f"{len(archs)} architectures but {len(metrics)} metrics")
        ids = torch.as_tensor(self.vocab.encode(archs), device=self.device)
        w = training_weights(metrics, self.top_fraction, self.weighting, self.min_train, groups)
        picks = self._np_rng.choice(len(w), size=(self.steps, self.batch_size), p=w)
        self.vae.train()
        rec_t = kl_t = torch.tensor(float("nan"))
        with _one_thread(self._small):
            for step in range(self.steps):
                batch = ids[torch.as_tensor(picks[step], device=self.device)]
                loss, rec_t, kl_t = self.vae.loss(batch, beta=self.beta, generator=self._cpu_or_none())
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
        rec, kl = float(rec_t), float(kl_t)
        self.vae.eval()
        self.rounds += 1
        self.last_stats = {"round": self.rounds, "reconstruction": rec, "kl": kl,
                           "train_size": int((w > 0).sum())}
        return self.last_stats

    def _cpu_or_none(self):
        return self.generator if self.device.type == "cpu" else None

    def sample_ids(self, n: int, temperature: float | None = None) -> np.ndarray:
        """Token ids of ``n`` draws from ``p_theta`` (Eq. 11's VAE term)."""
        t = self.temperature if temperature is None else temperature
        if self.device.type == "cpu":
            with _one_thread(self._small):
                ids = self.vae.sample(n, generator=self.generator, temperature=t)
        else:
            ids = self.vae.sample(n, temperature=t)
        return ids.cpu().numpy()

    def sample(self, n: int, temperature: float | None = None, tries: int = 20) -> list:
        """``n`` architectures from ``p_theta`` (rows the space's ``check`` rejects are
        redrawn; after ``tries`` rounds fewer may come back)."""
        out = []
        for _ in range(tries):
            for row in self.sample_ids(max(2 * (n - len(out)), 1), temperature):
                arch = self.vocab.decode(row, self._np_rng)
                if arch is not None:
                    out.append(arch)
                    if len(out) == n:
                        return out
        return out

    def reconstruction_accuracy(self, archs) -> float:
        """Share of positions decoded back exactly from the posterior mean (0-1)."""
        ids = torch.as_tensor(self.vocab.encode(archs), device=self.device)
        return float((self.vae.reconstruct(ids) == ids).float().mean())
