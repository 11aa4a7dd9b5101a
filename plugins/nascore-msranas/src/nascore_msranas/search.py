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

from nascore.api import Trainer, WeightSharingTrainer

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


class Searcher:
    """Runs the alternating optimization for one supernet, task and settings, through the
    core :class:`~nascore.api.WeightSharingTrainer`: ``alternate="step"`` with the
    architecture step first (DARTS Algorithm 1), no path (the forward pass is the
    continuous relaxation), the weight half as the weight split and the architecture half
    as the architecture split."""

    def __init__(self, supernet: MultiScaleSupernet, space, task, settings: SearchSettings, *,
                 seed: int = 0, device: str | torch.device = "cpu"):
        self.net, self.space, self.settings = supernet, space, settings
        self.trainer = WeightSharingTrainer(
            batch_size=settings.batch_size, lr=settings.w_lr, lr_min=settings.w_lr_min,
            momentum=settings.w_momentum, weight_decay=settings.w_weight_decay, grad_clip=settings.grad_clip,
            alternate="step", arch_first=True, cutout=settings.cutout, device=str(device), seed=seed)
        half_w, half_a = split_halves(len(task.train.y), self.trainer.generator_)
        X, y = task.train.X, task.train.y
        self.weights, self.alphas = supernet.weight_parameters(), supernet.arch_parameters()
        self.trainer.setup(supernet, (X[half_w], y[half_w]), (X[half_a], y[half_a]), weights=self.weights,
                           arch_parameters=self.alphas, horizon=settings.epochs,
                           loss=lambda net, batch, path: self.loss(batch))
        self.device = self.trainer.device_
        self.valid = task.valid
        self.criterion = Trainer(exit_weights=None if settings.exit_weights is None
                                 else list(settings.exit_weights), device="cpu")
        self.a_opt = torch.optim.Adam(self.alphas, lr=settings.alpha_lr, betas=(0.5, 0.999),
                                      weight_decay=settings.alpha_weight_decay)

    def loss(self, batch) -> torch.Tensor:
        """Eq. 3 on one batch: the weighted sum of the exits' cross-entropies."""
        x, y = batch
        return self.criterion.loss(self.net(x), y)

    def arch_step(self, step) -> torch.Tensor | float:
        """The architecture hook: one Adam step on ``alpha`` with the first- or
        second-order gradient of the loss on the architecture batch (the second order
        unrolls the weights one virtual SGD step at the current learning rate and
        momentum); returns the architecture loss (NaN for the second order)."""
        s = self.settings
        if s.order == "second":
            state = self.trainer.weight_optimizer_.state
            buffers = [state.get(p, {}).get("momentum_buffer") for p in self.weights]
            grads = second_order_grads(self.loss, step.weight_batch, step.batch, self.weights, self.alphas, step.lr,
                                       s.w_momentum, s.w_weight_decay, buffers)
            arch_loss = float("nan")
        else:
            grads, arch_loss = first_order_grads(self.loss, step.batch, self.alphas, with_loss=True)
        architecture_step(self.a_opt, grads, self.alphas)
        return arch_loss

    def epoch(self, epoch: int) -> dict:
        row = self.trainer.train_epoch(epoch, arch_step=self.arch_step)
        arch_mean = float(torch.stack([torch.as_tensor(v) for v in row["arch"]]).mean())
        return {"epoch": epoch + 1, "lr": row["lr"], "train_loss": row["loss"],
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
