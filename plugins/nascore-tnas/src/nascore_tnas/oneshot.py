"""TNAS-OS: one-shot search with the TNAS sampler (Section 4.2 of the TNAS paper).

1. Train the weight-sharing supernet with single paths drawn from
   ``Gamma(alpha) = (1 - eps) U(alpha) + eps p_theta(alpha|z)`` (Eq. 11); the VAE learns
   from the paths' supernet validation accuracy (Eq. 1) and eps grows by ``eps_inc`` per
   round, so "the super network trains more samples from TNAS".
2. Search stage: "from p_theta(alpha|z) sampling initial seeds, and then use genetic
   algorithm to search, such as Guo [10]" -- the evolutionary search of single-path
   one-shot NAS (top-k pool, mutation with a per-dimension probability, crossover),
   with supernet validation accuracy as fitness.
3. The best candidates are retrained from scratch through ``ctx.evaluate``.
"""

from __future__ import annotations

import time

import attrs
import numpy as np

from nascore import param
from nascore.api import ConfigError
from nascore.api import in_range, one_of

from .weight_sharing import WeightSharingSettings, cost_info, retrain_best, score_round


@attrs.define
class TNASOneShot(WeightSharingSettings):
    """TNAS-OS: SPOS supernet trained on paths from the Eq. 11 mixture, VAE-seeded
    evolutionary search, the winner retrained from scratch (TNAS paper, Section 4.2)."""

    conformance = {"params": {"epochs": 1, "vae_steps": 5, "population": 6, "generations": 1, "top_k": 3,
                              "measure_child_epoch": False},
                   "space": {"name": "nb201", "C": 4, "N": 1}, "task": {"dataset": "digits", "subset": 200},
                   "budget": 1}

    eps_inc: float = param(0.1, help="increase of eps per round (Eq. 11), capped at 1", validator=in_range(0.0, 1.0))
    eps_init: float = param(0.0, help="eps after the first VAE round", validator=in_range(0.0, 1.0))
    population: int = param(20, help="evolution population per generation", validator=in_range(2))
    generations: int = param(5, help="evolution generations after the p_theta seeds", validator=in_range(0))
    top_k: int = param(5, help="parents kept for mutation and crossover (SPOS top-k)", validator=in_range(1))
    mutation_prob: float = param(0.1, help="per-dimension mutation probability (SPOS)",
                                 validator=in_range(0.0, 1.0, low_open=True))
    search_samples: int | None = param(None, help="validation samples of the evolution's fitness (none: all)",
                                       validator=in_range(1))
    path_sampler: str = param("tnas", help="'tnas': paths from Eq. 11's mixture, evolution seeded by p_theta; "
                              "'uniform': the SPOS baseline (uniform paths, uniformly seeded evolution), the "
                              "same in every other respect", validator=one_of("tnas", "uniform"))

    def run(self, ctx):
        """Supernet training with TNAS sampling, evolution, retraining (Section 4.2)."""
        self.check_heads()
        if self.top_k > self.population:
            raise ConfigError(f"top_k ({self.top_k}) must not exceed population ({self.population})")
        rng = np.random.default_rng(ctx.rng.integers(2**63))
        t0 = time.perf_counter()
        trainer = self.make_trainer(ctx, seed=int(rng.integers(2**31)))
        uniform = self.path_sampler == "uniform"
        sampler = self.make_sampler(ctx.space, rng, eps_inc=0.0 if uniform else self.eps_inc,
                                    eps_init=0.0 if uniform else self.eps_init)
        rounds = self.train_supernet(ctx, trainer, sampler, rng)
        t1 = time.perf_counter()
        ranked, fitness, history = self.evolve(ctx, trainer, sampler, rng)
        info = {"rounds": rounds, "path_sampler": self.path_sampler, "epsilon": sampler.epsilon, "sampler": dict(sampler.stats),
                "vae": dict(sampler.distribution.last_stats), "train_seconds": t1 - t0,
                "search_seconds": time.perf_counter() - t1, "evolution": history,
                "supernet_accuracy": {a.key: fitness[a.key] for a in ranked[:max(self.final_candidates, 5)]}}
        info.update(cost_info(trainer, self, ranked[0] if ranked else None))
        ctx.log(f"tnas-oneshot: best supernet accuracy {fitness[ranked[0].key]:.2f}; retraining "
                f"{min(self.final_candidates, ctx.remaining)} candidate(s)")
        return retrain_best(ctx, ranked, self.final_candidates, info)

    def train_supernet(self, ctx, trainer, sampler, rng) -> int:
        """Rounds of Eq. 9 on paths from Gamma, each closed by a round of Eq. 1."""
        rounds = self.rounds(trainer)
        with ctx.progress(rounds, "tnas supernet"):
            for r in range(rounds):
                paths = sampler.ask(self.archs_per_round)
                trainer.train(paths, self.round_steps)
                accs = score_round(trainer, sampler, paths, rng, self.score_samples)
                if (r + 1) % max(1, rounds // 5) == 0 or r == rounds - 1:
                    ctx.log(f"tnas-oneshot round {r + 1}/{rounds}: eps={sampler.epsilon:.2f} "
                            f"supernet valid acc mean {np.mean(accs):.1f} max {np.max(accs):.1f}")
        return rounds

    def evolve(self, ctx, trainer, sampler, rng):
        """SPOS evolution seeded by ``p_theta`` samples; returns candidates ranked by
        supernet accuracy, the fitness table and the best fitness per generation."""
        space = ctx.space
        idx = trainer.valid_indices(self.search_samples, rng)
        fitness: dict = {}
        archs: dict = {}

        def score(batch):
            for a in batch:
                if a.key not in fitness:
                    archs[a.key] = a
                    fitness[a.key] = trainer.accuracy(a, idx)

        if self.path_sampler == "uniform":
            score([space.sample(rng) for _ in range(self.population)])
        else:
            score(sampler.sample_model(self.population))
        history = [max(fitness.values())]
        for _ in range(self.generations):
            top = sorted(archs.values(), key=lambda a: -fitness[a.key])[: self.top_k]
            children = []
            for i in range(self.population):
                if i % 2 == 0 or len(top) < 2:
                    children.append(space.mutate(top[int(rng.integers(len(top)))], rng, self.mutation_prob))
                else:
                    a, b = rng.choice(len(top), size=2, replace=False)
                    children.append(space.crossover(top[int(a)], top[int(b)], rng))
            score(children)
            history.append(max(fitness.values()))
        ranked = sorted(archs.values(), key=lambda a: -fitness[a.key])
        return ranked, fitness, history
