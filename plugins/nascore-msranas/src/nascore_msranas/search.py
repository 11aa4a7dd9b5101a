"""The MS-RANAS search loop: DARTS's alternating bilevel optimization (Liu et al.,
Algorithm 1) on the multi-scale supernet with early exits (MS-RANAS Sections 3.1-3.3).

The training split is cut in two seeded halves: the network weights ``w`` learn on the
first (SGD with momentum, cosine learning rate, gradient clipping), the architecture
``alpha`` on the second (Adam); every step first updates ``alpha`` on a batch of the
second half (first- or second-order, :mod:`nascore_msranas.bilevel`), then ``w`` on a
batch of the first.  The loss is the weighted sum of the exits' cross-entropies (Eq. 3,
equal weights by default); cutout (DeVries & Taylor) may mask both halves' batches, the
search-time augmentation of Section 4.1.  After every epoch the discrete genotype is
derived from ``softmax(alpha)``: per node the two strongest incoming edges, by their
strongest non-``none`` op (DARTS Section 2.4).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import attrs
import torch

from nascore.training import Trainer, cutout

from .bilevel import architecture_step, first_order_grads, second_order_grads
from .network import MultiScaleSupernet


@attrs.define(kw_only=True)
class SearchSettings:
    """Hyperparameters of the search (DARTS Section 3.1.1 defaults)."""

    epochs: int = 50
    batch_size: int = 64
    order: str = "first"
    w_lr: float = 0.025
    w_lr_min: float = 0.001
    w_momentum: float = 0.9
    w_weight_decay: float = 3e-4
    alpha_lr: float = 3e-4
    alpha_weight_decay: float = 1e-3
    grad_clip: float | None = 5.0
    cutout: int = 0
    exit_weights: Sequence[float] | None = None

    def lr_at(self, epoch: int) -> float:
        """Cosine annealing from ``w_lr`` to ``w_lr_min`` over the epochs."""
        return self.w_lr_min + 0.5 * (self.w_lr - self.w_lr_min) * (1 + math.cos(math.pi * epoch / self.epochs))


@attrs.define
class SearchRecord:
    """The outcome of a search: one record per epoch and the derived genomes."""

    epochs: list = attrs.field(factory=list)
    genomes: list = attrs.field(factory=list)
    seconds: float = 0.0
    weights: dict = attrs.field(factory=dict)
    exit_accuracies: list = attrs.field(factory=list)


def split_halves(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded partition of ``range(n)`` into the weights half and the architecture half."""
    perm = torch.randperm(n, generator=generator)
    return perm[: n // 2], perm[n // 2:]


def derive(space, supernet: MultiScaleSupernet):
    """The discrete architecture of ``space`` from the supernet's ``softmax(alpha)`` (the
    softmax includes ``none``, whose column is then dropped, as DARTS derives)."""
    weights = supernet.softmax_weights()
    cols = [supernet.op_names.index(op) for op in space.op_names]
    return space.from_weights({k: w.detach()[:, cols] for k, w in weights.items()})


def _batches(n: int, size: int) -> list[tuple[int, int]]:
    """Batch bounds over ``n`` samples; a trailing batch of one (BatchNorm) is dropped."""
    bounds = [(i, min(i + size, n)) for i in range(0, n, size)]
    return [b for b in bounds if b[1] - b[0] > 1 or n == 1]


class Searcher:
    """Runs the alternating optimization for one supernet, task and settings."""

    def __init__(self, supernet: MultiScaleSupernet, space, task, settings: SearchSettings, *,
                 seed: int = 0, device: str | torch.device = "cpu"):
        self.net = supernet.to(device)
        self.space, self.settings, self.device = space, settings, torch.device(device)
        self.gen = torch.Generator().manual_seed(seed)
        half_w, half_a = split_halves(len(task.train.y), self.gen)
        self.data = [(task.train.X[h].to(device), task.train.y[h].to(device)) for h in (half_w, half_a)]
        self.valid = task.valid
        self.criterion = Trainer(exit_weights=None if settings.exit_weights is None
                                 else list(settings.exit_weights), device="cpu")
        self.weights, self.alphas = supernet.weight_parameters(), supernet.arch_parameters()
        self.w_opt = torch.optim.SGD(self.weights, lr=settings.w_lr, momentum=settings.w_momentum,
                                     weight_decay=settings.w_weight_decay)
        self.a_opt = torch.optim.Adam(self.alphas, lr=settings.alpha_lr, betas=(0.5, 0.999),
                                      weight_decay=settings.alpha_weight_decay)

    def loss(self, batch) -> torch.Tensor:
        """Eq. 3 on one batch: the weighted sum of the exits' cross-entropies."""
        x, y = batch
        return self.criterion.loss(self.net(x), y)

    def _batch(self, half: int, idx: torch.Tensor):
        X, y = self.data[half]
        x = X.index_select(0, idx)
        if self.settings.cutout:
            x = cutout(x, self.settings.cutout, self.gen)
        return x, y.index_select(0, idx)

    def step(self, train_batch, valid_batch, lr: float) -> tuple[float, float]:
        """One architecture step then one weight step; returns both losses."""
        s = self.settings
        if s.order == "second":
            buffers = [self.w_opt.state.get(p, {}).get("momentum_buffer") for p in self.weights]
            grads = second_order_grads(self.loss, train_batch, valid_batch, self.weights, self.alphas, lr,
                                       s.w_momentum, s.w_weight_decay, buffers)
            arch_loss = float("nan")
        else:
            grads, arch_loss = first_order_grads(self.loss, valid_batch, self.alphas, with_loss=True)
        architecture_step(self.a_opt, grads, self.alphas)
        for a in self.alphas:
            a.requires_grad_(False)  # the weight step needs no gradient for alpha
        try:
            loss = self.loss(train_batch)
            self.w_opt.zero_grad(set_to_none=True)
            loss.backward()
        finally:
            for a in self.alphas:
                a.requires_grad_(True)
        if s.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.weights, s.grad_clip)
        self.w_opt.step()
        return loss.detach(), arch_loss

    def epoch(self, epoch: int) -> dict:
        s = self.settings
        lr = s.lr_at(epoch)
        for group in self.w_opt.param_groups:
            group["lr"] = lr
        self.net.train()
        n_w, n_a = len(self.data[0][1]), len(self.data[1][1])
        perm_w = torch.randperm(n_w, generator=self.gen).to(self.device)
        perm_a = torch.randperm(n_a, generator=self.gen).to(self.device)
        losses, arch_losses = [], []
        for i, (lo, hi) in enumerate(_batches(min(n_w, n_a), s.batch_size)):
            loss, arch = self.step(self._batch(0, perm_w[lo:hi]), self._batch(1, perm_a[lo:hi]), lr)
            losses.append(loss)
            arch_losses.append(arch)
        mean = float(torch.stack([torch.as_tensor(v) for v in losses]).mean())
        arch_mean = float(torch.stack([torch.as_tensor(v) for v in arch_losses]).mean())
        if not math.isfinite(mean):
            from nascore.errors import DivergedError

            raise DivergedError(f"search diverged in epoch {epoch + 1} (train loss {mean}); lower w_lr")
        return {"epoch": epoch + 1, "lr": lr, "train_loss": mean,
                "arch_loss": None if math.isnan(arch_mean) else arch_mean}

    def run(self, log: Callable[[str], None] | None = None, advance: Callable | None = None) -> SearchRecord:
        record = SearchRecord()
        start = time.perf_counter()
        for epoch in range(self.settings.epochs):
            t0 = time.perf_counter()
            row = self.epoch(epoch)
            row["seconds"] = time.perf_counter() - t0
            arch = derive(self.space, self.net)
            row["genome_key"] = arch.key
            record.epochs.append(row)
            record.genomes.append(arch.genome)
            if log is not None:
                log(f"msranas search epoch {epoch + 1}/{self.settings.epochs}: train loss {row['train_loss']:.3f}, "
                    f"{row['seconds']:.1f} s, cell {arch.key}")
            if advance is not None:
                advance()
        record.seconds = time.perf_counter() - start
        record.weights = {k: w.detach().cpu().tolist() for k, w in self.net.softmax_weights().items()}
        return record

    def valid_accuracies(self) -> list[float]:
        """Per-exit accuracy (percent) of the supernet on the task's validation split."""
        return self.criterion.exit_accuracies(self.net, self.valid)
