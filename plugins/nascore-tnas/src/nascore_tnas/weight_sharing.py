"""What the two weight-sharing TNAS optimizers share (Section 4 of the TNAS paper).

Training proceeds in rounds: a round draws ``archs_per_round`` paths from the sampling
distribution Gamma, trains the supernet ``round_steps`` steps on them (one path per step,
Eq. 9), then scores each path by its validation accuracy with the shared weights and
tells the scores to the learned distribution, which retrains (Eq. 1) and raises eps
(Eq. 11).  The scores are standardized within their round: paths of one round are
measured with the same weights, while raw accuracies of different rounds mostly reflect
how long the supernet had trained.  So each round is told to the sampler as one group and
the VAE's top share is cut within every round (its quantile in the round), never over the
pooled history of scores from different weights.  The chosen architecture is finally retrained from
scratch through ``ctx.evaluate`` so that it is stored and reported like any evaluation.
"""

from __future__ import annotations

import math

import attrs
import numpy as np

from nascore import param
from nascore.api import in_range
from nascore.api import OK, Evaluation, SearchResult

from .sampler import TNASSampler, VAESettings


@attrs.define
class WeightSharingSettings(VAESettings):
    """Supernet training, round and final-retraining parameters."""

    epochs: int = param(10, help="supernet training epochs over the train split", validator=in_range(1))
    batch_size: int = param(64, help="supernet minibatch size", validator=in_range(1))
    lr: float = param(0.05, help="SGD learning rate of the supernet weights (cosine decay)",
                      validator=in_range(0.0, low_open=True))
    momentum: float = param(0.9, help="SGD momentum", validator=in_range(0.0, 1.0, high_open=True))
    weight_decay: float = param(3e-4, help="SGD weight decay", validator=in_range(0.0))
    grad_clip: float | None = param(5.0, help="gradient-norm clip of the supernet weights; none disables",
                                    validator=in_range(0.0, low_open=True))
    archs_per_round: int = param(10, help="paths drawn from Gamma per round; their accuracy trains the VAE",
                                 validator=in_range(1))
    round_steps: int = param(10, help="supernet steps per round (one path per step)", validator=in_range(1))
    score_samples: int | None = param(256, help="validation samples that score a round's paths (none: all)",
                                      validator=in_range(1))
    final_candidates: int = param(1, help="best candidates retrained from scratch by the run's evaluator",
                                  validator=in_range(1))
    measure_child_epoch: bool = param(True, help="time one stand-alone epoch of the result (cost ratio in info)")
    device: str | None = param(None, help="supernet device (auto, cpu, cuda); none: the run's device")

    def make_trainer(self, ctx, seed: int):
        from .supernet import PathSupernet

        task = ctx.task
        steps_per_epoch = math.ceil(len(task.train.X) / min(self.batch_size, max(len(task.train.X), 1)))
        return PathSupernet(
            ctx.space, task, steps_total=self.epochs * steps_per_epoch, batch_size=self.batch_size,
            lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay, grad_clip=self.grad_clip,
            device=self.device or getattr(ctx, "device", "auto"), seed=seed,
        )

    def make_sampler(self, space, rng: np.random.Generator, *, eps_inc: float, eps_init: float) -> TNASSampler:
        """The Eq. 11 sampler of the paths, retrained once per round."""
        names = [f.name for f in attrs.fields(VAESettings)]
        sampler = TNASSampler(**{n: getattr(self, n) for n in names}, eps_inc=eps_inc, eps_init=eps_init,
                              retrain_every=self.archs_per_round, unique=False)
        return sampler.setup(space, rng)

    def rounds(self, trainer) -> int:
        return math.ceil(self.epochs * trainer.steps_per_epoch / self.round_steps)


def score_round(trainer, sampler, paths, rng: np.random.Generator, samples: int | None,
                round_index: int | None = None) -> list[float]:
    """Validation accuracy of each path with the shared weights (Eq. 10), told to the
    sampler as one group (``round_index``, default the supernet's step count), so the
    VAE's top share is taken within the round (one round of Eq. 1)."""
    idx = trainer.valid_indices(samples, rng)
    accs = np.array([trainer.accuracy(a, idx) for a in paths])
    group = trainer.step_count if round_index is None else round_index
    sampler.tell([
        Evaluation(key=a.key, space=a.space, genome=a.genome, status=OK,
                   metrics={"valid_accuracy": float(acc), "supernet_accuracy": float(acc)})
        for a, acc in zip(paths, accs)
    ], group=group)
    return accs.tolist()


def retrain_best(ctx, ranked, n: int, info: dict) -> SearchResult:
    """Retrain the ``n`` best-ranked architectures from scratch with ``ctx.evaluate``
    (as many as the budget allows) and return the best by the run's metric."""
    metric = getattr(ctx, "metric", "valid_accuracy")
    evals = ctx.evaluate(ranked[:max(0, min(n, ctx.remaining))]) if ranked else []
    ok = [e for e in evals if e.status == OK and e.metric(metric) is not None]
    if ok:
        best = max(ok, key=lambda e: e.metric(metric))
        info["retrained"] = [{"key": e.key, metric: e.metric(metric), "test_accuracy": e.metric("test_accuracy")}
                             for e in evals]
        return SearchResult(best.arch, info=info)
    info["retrained"] = []
    return SearchResult(ranked[0] if ranked else None, info=info)


def cost_info(trainer, settings: WeightSharingSettings, best) -> dict:
    """Supernet seconds per epoch and, optionally, the stand-alone child's epoch."""
    per_step = trainer.seconds / max(trainer.step_count, 1)
    out = {"supernet_seconds": trainer.seconds, "supernet_steps": trainer.step_count,
           "supernet_epoch_seconds": per_step * trainer.steps_per_epoch}
    if settings.measure_child_epoch and best is not None:
        child = trainer.child_epoch_seconds(best)
        out["child_epoch_seconds"] = child
        out["supernet_to_child_epoch"] = out["supernet_epoch_seconds"] / child if child > 0 else None
    return out
