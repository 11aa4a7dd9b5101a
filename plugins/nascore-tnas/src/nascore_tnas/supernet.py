"""Single-path weight sharing for TNAS (Section 4.1 of the TNAS paper, Eqs. 9-10).

The hypernetwork ``G(alpha, W)`` is the core's supernet of the space
(``space.supernet(task)``: :class:`nascore.nn.NB201Supernet` or
:class:`nascore.nn.DartsSupernet`); an architecture is a path through it
(``space.to_path(arch)``) and inherits the weights ``W_alpha`` of the ops on that path.
Eq. 9 is minimized by SGD on paths drawn from ``Gamma(alpha)`` (one path per step, as in
single-path one-shot NAS, the paper's reference [10]); Eq. 10 ranks paths by their
validation accuracy with the shared weights.  The SGD loop itself is the core's
:class:`~nascore.api.WeightSharingTrainer`; this module adds what is TNAS's own.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from nascore.api import WeightSharingTrainer
from nascore.api import ConfigError


def check_supernet_space(space) -> None:
    """ConfigError unless the space offers ``supernet``, ``to_path`` and ``from_weights``."""
    # one-shot support is a capability of some spaces (nb201, darts), not a protocol member:
    # this check turns its absence into one clear error before any training
    missing = [m for m in ("supernet", "to_path", "from_weights") if not hasattr(space, m)]
    if missing:
        raise ConfigError(
            f"TNAS weight-sharing search needs a space with a supernet (nb201, darts); space "
            f"{space.name!r} lacks {missing[0]}()"
        )


class PathSupernet:
    """The hypernetwork ``G(alpha, W)`` of a space, trained one path per step (Eq. 9) by
    the core :class:`~nascore.api.WeightSharingTrainer`, and the paths' accuracies with
    the shared weights (Eq. 10).

    The trainer streams batches (TNAS rounds do not align with epochs) and anneals the
    SGD learning rate per step, cosine over ``steps_total``; an architecture step (TNAS-G)
    gets a validation batch drawn uniformly with replacement."""

    def __init__(self, space, task, *, steps_total: int, batch_size: int = 64, lr: float = 0.05,
                 momentum: float = 0.9, weight_decay: float = 3e-4, grad_clip: float | None = 5.0,
                 device: str = "auto", seed: int = 0):
        check_supernet_space(space)
        self.space, self.task = space, task
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = space.supernet(task)
        if len(task.train.y) == 0 or len(task.valid.y) == 0:
            raise ConfigError(f"task {task.name!r} needs non-empty train and valid splits for a supernet")
        self.trainer = WeightSharingTrainer(
            batch_size=min(batch_size, len(task.train.y)), lr=lr, momentum=momentum, weight_decay=weight_decay,
            grad_clip=grad_clip, batching="stream", device="auto" if device is None else str(device), seed=seed + 1)
        self.trainer.setup(net, (task.train.X, task.train.y), (task.valid.X, task.valid.y),
                           weights=net.weight_parameters(), arch_parameters=net.arch_parameters(),
                           horizon=steps_total)
        self.net, self.device = net, self.trainer.device_
        self.Xv, self.yv = self.trainer.arch_data_

    @property
    def batch_size(self) -> int:
        return self.trainer.batch_size

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.trainer.train_[1]) / self.batch_size)

    @property
    def step_count(self) -> int:
        return self.trainer.steps_

    @property
    def seconds(self) -> float:
        return self.trainer.seconds_

    def train(self, paths, steps: int, arch_step=None) -> dict:
        """``steps`` steps of Eq. 9 cycling through ``paths`` (one path per step), each
        followed by ``arch_step`` when given (its :class:`~nascore.api.ArchStep` carries
        the supernet path of that step)."""
        cycle = itertools.cycle([self.space.to_path(a) for a in paths])
        return self.trainer.train_steps(steps, sample_path=lambda: next(cycle), arch_step=arch_step)

    def valid_indices(self, n: int | None, rng: np.random.Generator) -> torch.Tensor:
        """A fixed random subset of ``n`` validation samples (all when ``n`` is None)."""
        total = len(self.Xv)
        if n is None or n >= total:
            return torch.arange(total, device=self.device)
        return torch.as_tensor(np.sort(rng.choice(total, size=n, replace=False)), device=self.device)

    @torch.no_grad()
    def accuracy(self, arch, indices: torch.Tensor | None = None, batch: int = 512) -> float:
        """Validation accuracy (percent) of the path of ``arch`` with the shared weights.

        Batch normalization uses the statistics of each evaluation batch (train mode), the
        usual one-shot substitute for recalibrating BN per path (SPOS, Section 3.3)."""
        self.net.train()
        idx = torch.arange(len(self.Xv), device=self.device) if indices is None else indices
        path = self.space.to_path(arch)
        correct = 0
        for start in range(0, len(idx), batch):
            sel = idx[start:start + batch]
            correct += int((self.net(self.Xv[sel], path=path).argmax(1) == self.yv[sel]).sum())
        return 100.0 * correct / max(len(idx), 1)

    def child_epoch_seconds(self, arch, repeats: int = 1) -> float:
        """Seconds of one training epoch of the stand-alone network of ``arch`` (same batch
        size, same device, the same core loop without architecture steps): the reference
        for the supernet's cost per epoch."""
        child = WeightSharingTrainer(batch_size=self.batch_size, lr=0.01, momentum=0.9, weight_decay=0.0,
                                     schedule="none", grad_clip=None, drop_single=False,
                                     device=str(self.device), seed=0)
        child.setup(self.space.build(arch, self.task), self.trainer.train_)
        return sum(child.train_epoch(e)["seconds"] for e in range(repeats)) / repeats
