"""Single-path weight-sharing training for TNAS (Section 4.1 of the TNAS paper, Eqs. 9-10).

The hypernetwork ``G(alpha, W)`` is the core's supernet of the space
(``space.supernet(task)``: :class:`nascore.nn.NB201Supernet` or
:class:`nascore.nn.DartsSupernet`); an architecture is a path through it
(``space.to_path(arch)``) and inherits the weights ``W_alpha`` of the ops on that path.
Eq. 9 is minimized by SGD on paths drawn from ``Gamma(alpha)`` (one path per step, as in
single-path one-shot NAS, the paper's reference [10]); Eq. 10 ranks paths by their
validation accuracy with the shared weights.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from nascore.api import ConfigError


def resolve_torch_device(device: str) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available; use device='cpu'")
    return torch.device(device)


def check_supernet_space(space) -> None:
    """ConfigError unless the space offers ``supernet``, ``to_path`` and ``from_weights``."""
    missing = [m for m in ("supernet", "to_path", "from_weights") if not hasattr(space, m)]
    if missing:
        raise ConfigError(
            f"TNAS weight-sharing search needs a space with a supernet (nb201, darts); space "
            f"{space.name!r} lacks {missing[0]}()"
        )


class SharedWeightsTrainer:
    """SGD with cosine decay on the supernet's weights W, one path per step (Eq. 9), and
    path accuracies with the shared weights (Eq. 10)."""

    def __init__(self, space, task, *, steps_total: int, batch_size: int = 64, lr: float = 0.05,
                 momentum: float = 0.9, weight_decay: float = 3e-4, grad_clip: float | None = 5.0,
                 device: str = "auto", seed: int = 0):
        check_supernet_space(space)
        self.space, self.task = space, task
        self.device = resolve_torch_device(device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = space.supernet(task).to(self.device)
        self.X, self.y = task.train.X.to(self.device), task.train.y.to(self.device)
        self.Xv, self.yv = task.valid.X.to(self.device), task.valid.y.to(self.device)
        if len(self.X) == 0 or len(self.Xv) == 0:
            raise ConfigError(f"task {task.name!r} needs non-empty train and valid splits for a supernet")
        self.batch_size, self.grad_clip = min(batch_size, len(self.X)), grad_clip
        self.lr, self.steps_total = lr, max(steps_total, 1)
        self.optimizer = torch.optim.SGD(self.net.weight_parameters(), lr=lr, momentum=momentum,
                                         weight_decay=weight_decay)
        self.generator = torch.Generator().manual_seed(seed + 1)
        self.step_count = 0
        self.seconds = 0.0
        self._order = torch.empty(0, dtype=torch.long)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.X) / self.batch_size)

    def _batch(self):
        if len(self._order) < self.batch_size:
            self._order = torch.cat([self._order, torch.randperm(len(self.X), generator=self.generator)])
        idx, self._order = self._order[: self.batch_size], self._order[self.batch_size:]
        idx = idx.to(self.device)
        return self.X[idx], self.y[idx]

    def _set_lr(self):
        lr = 0.5 * self.lr * (1.0 + math.cos(math.pi * min(self.step_count, self.steps_total) / self.steps_total))
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def train_step(self, arch) -> float:
        """One SGD step of Eq. 9 on the single path of ``arch``; returns the loss."""
        t = time.perf_counter()
        self.net.train()
        self._set_lr()
        x, y = self._batch()
        loss = F.cross_entropy(self.net(x, path=self.space.to_path(arch)), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.net.weight_parameters(), self.grad_clip)
        self.optimizer.step()
        self.step_count += 1
        self.seconds += time.perf_counter() - t
        return float(loss.detach())

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
        size, same device): the reference for the supernet's cost per epoch."""
        model = self.space.build(arch, self.task).to(self.device)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        model.train()
        gen = torch.Generator().manual_seed(0)
        t = time.perf_counter()
        for _ in range(repeats):
            for idx in torch.randperm(len(self.X), generator=gen).to(self.device).split(self.batch_size):
                x, y = self.X[idx], self.y[idx]
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - t) / repeats
