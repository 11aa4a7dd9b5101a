"""The one weight-sharing (supernet) trainer: weight steps and architecture steps, alternated.

Every weight-sharing method trains the shared weights ``w`` of a supernet by SGD on
sub-networks (paths) while something else -- architecture parameters, a learned sampler,
a policy -- learns from a second split.  What differs between methods is *which path* a
weight step trains and *what the architecture step does*; both come from the caller:

* ``sample_path()`` is called once per weight step and returns the path (sub-network) to
  train: a uniform draw (SPOS, Guo et al. 2020), a draw from a learned distribution (TNAS
  Eq. 11), a list of input cells (NAT Algorithm 1, lines 3-7), or None for a model whose
  forward pass needs no path (DARTS's continuous relaxation).
* ``arch_step(step)`` is called with an :class:`ArchStep` -- a batch of the architecture
  split, plus the paired weight batch, path and learning rate -- and performs its own
  update (DARTS first/second order with Adam, TNAS-G's straight-through step, NAT's policy
  gradient); whatever it returns is collected in the record.

The trainer owns the rest: the SGD optimizer of ``w`` (momentum, Nesterov, weight decay),
the cosine learning-rate schedule, gradient-norm clipping, the device, batching from
seeded permutations and the alternation order:

* ``alternate="step"``: every step draws a weight batch and an architecture batch, then
  runs the architecture step and the weight step (``arch_first`` chooses the order; DARTS
  Algorithm 1 updates ``alpha`` first).  With ``batching="epoch"`` an epoch is one pass
  over the smaller split; with ``batching="stream"`` batches come from an endless stream
  of permutations of the weight split and architecture batches are drawn uniformly with
  replacement, so any number of steps can run (TNAS rounds do not align with epochs).
* ``alternate="epoch"``: an epoch first passes over the weight split with weight steps,
  then over the architecture split with architecture steps (NAT Algorithm 1).

Randomness: one CPU ``torch.Generator`` seeded by ``seed`` (``generator_``) draws every
permutation, batch and cutout square, so batches are the same on every device; callers
whose own draws must interleave with the trainer's (NAT's policy samples, MS-RANAS's
split) use that generator too.  The model is built and initialized by the caller.
The schedule is annealed per epoch (``batching="epoch"``) or per step (``"stream"``) over
the ``horizon`` given to :meth:`setup`; a weight step never syncs with the host -- losses
stay on the device until the record of an epoch (or of a run of steps) is made.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import attrs

from .device import DEVICE_HELP, check_device_name, resolve_device
from .errors import ConfigError, DivergedError
from .params import in_range, one_of, param


@attrs.define(kw_only=True, frozen=True)
class ArchStep:
    """What one call of the architecture hook receives."""

    batch: tuple = attrs.field(metadata={"help": "(x, y) from the architecture split"})
    weight_batch: tuple | None = attrs.field(default=None, metadata={
        "help": "the weight batch of the same step (alternate='step'); None in an architecture phase"})
    path: Any = attrs.field(default=None, metadata={
        "help": "the path the paired weight step trains (alternate='step'); None otherwise"})
    lr: float = attrs.field(default=0.0, metadata={"help": "the weights' current learning rate (DARTS's xi)"})
    index: int = attrs.field(default=0, metadata={"help": "step number within this epoch or run of steps"})


def cross_entropy_loss(model, batch, path):
    """The default loss: cross-entropy of ``model(x, path)`` (``model(x)`` when path is None)."""
    import torch.nn.functional as F

    x, y = batch
    return F.cross_entropy(model(x) if path is None else model(x, path), y)


@attrs.define(kw_only=True)
class WeightSharingTrainer:
    """Alternating weight / architecture training of a supernet (see the module docstring)."""

    batch_size: int = param(64, help="mini-batch size of both splits", validator=in_range(1))
    lr: float = param(0.05, help="initial SGD learning rate of the shared weights",
                      validator=in_range(0.0, low_open=True))
    lr_min: float = param(0.0, help="learning rate the cosine schedule ends at", validator=in_range(0.0))
    momentum: float = param(0.9, help="SGD momentum", validator=in_range(0.0, 1.0, high_open=True))
    nesterov: bool = param(False, help="Nesterov momentum")
    weight_decay: float = param(3e-4, help="L2 weight decay of the shared weights", validator=in_range(0.0))
    schedule: str = param("cosine", help="learning-rate schedule: cosine (lr to lr_min over the horizon) or none",
                          validator=one_of("cosine", "none"))
    grad_clip: float | None = param(5.0, help="clip the weights' gradient norm to this value; none disables",
                                    validator=in_range(0.0, low_open=True))
    alternate: str = param("step", help="step: an architecture step with every weight step; epoch: a weight "
                           "phase over the weight split, then an architecture phase", validator=one_of("step", "epoch"))
    arch_first: bool = param(False, help="alternate='step': the architecture step before the weight step (DARTS)")
    batching: str = param("epoch", help="epoch: a seeded permutation per epoch; stream: an endless stream of "
                          "permutations, any number of steps", validator=one_of("epoch", "stream"))
    drop_single: bool = param(True, help="epoch batching: leave out a trailing batch of one sample (BatchNorm)")
    cutout: int = param(0, help="cutout square side applied to the images of both splits; 0 disables",
                        validator=in_range(0))
    device: str = param("auto", help=DEVICE_HELP, validator=check_device_name)
    seed: int = param(0, help="seed of the generator that draws every batch and cutout square")

    generator_: Any = attrs.field(init=False, repr=False)
    model_: Any = attrs.field(default=None, init=False, repr=False)
    device_: Any = attrs.field(default=None, init=False, repr=False)
    weights_: list = attrs.field(factory=list, init=False, repr=False)
    arch_parameters_: list = attrs.field(factory=list, init=False, repr=False)
    weight_optimizer_: Any = attrs.field(default=None, init=False, repr=False)
    train_: tuple = attrs.field(default=(), init=False, repr=False)
    arch_data_: tuple | None = attrs.field(default=None, init=False, repr=False)
    horizon_: int = attrs.field(default=1, init=False)
    loss_: Callable = attrs.field(default=cross_entropy_loss, init=False, repr=False)
    steps_: int = attrs.field(default=0, init=False)
    seconds_: float = attrs.field(default=0.0, init=False)
    _order: Any = attrs.field(default=None, init=False, repr=False)

    @generator_.default
    def _seeded_generator(self):
        import torch

        return torch.Generator().manual_seed(int(self.seed))

    def __attrs_post_init__(self):
        if self.alternate == "epoch" and self.batching == "stream":
            raise ConfigError("alternate='epoch' needs batching='epoch' (a stream has no epochs to alternate)")
        if self.nesterov and self.momentum == 0:
            raise ConfigError("nesterov=true needs momentum > 0")

    # ---- setup -----------------------------------------------------------------------
    def setup(self, model, train, arch=None, *, weights=None, arch_parameters=(), horizon: int = 1,
              loss: Callable | None = None) -> WeightSharingTrainer:
        """Move ``model`` and the splits to the device and build the weights' optimizer.

        ``train`` and ``arch`` are ``(X, y)`` tensors: the weight split and the
        architecture split (a validation split, or the second half of the training data
        in DARTS).  ``weights`` are the shared weights (default: all parameters);
        ``arch_parameters`` are frozen during weight steps so that those never compute
        their gradients.  ``horizon`` is the schedule's length in epochs (epoch batching)
        or steps (stream batching); ``loss(model, batch, path)`` defaults to
        :func:`cross_entropy_loss`."""
        import torch

        X, y = train
        if len(y) == 0 or (arch is not None and len(arch[1]) == 0):
            raise ConfigError(f"weight-sharing training needs non-empty splits; got {len(y)} weight samples"
                              + ("" if arch is None else f" and {len(arch[1])} architecture samples"))
        self.device_ = resolve_device(self.device)
        self.model_ = model.to(self.device_)
        self.train_ = (X.to(self.device_), y.to(self.device_))
        self.arch_data_ = None if arch is None else (arch[0].to(self.device_), arch[1].to(self.device_))
        self.weights_ = list(model.parameters() if weights is None else weights)
        self.arch_parameters_ = list(arch_parameters)
        self.horizon_ = max(int(horizon), 1)
        self.loss_ = cross_entropy_loss if loss is None else loss
        self.weight_optimizer_ = torch.optim.SGD(self.weights_, lr=self.lr, momentum=self.momentum,
                                                 nesterov=self.nesterov, weight_decay=self.weight_decay)
        self.steps_, self.seconds_, self._order = 0, 0.0, None
        return self

    def lr_at(self, t: int) -> float:
        """Learning rate at epoch or step ``t`` (0-based): cosine annealing from ``lr`` to
        ``lr_min`` over the horizon (Loshchilov & Hutter, SGDR, without restarts), held at
        ``lr_min`` past it; ``lr`` throughout with ``schedule="none"``."""
        if self.schedule == "none":
            return self.lr
        h = self.horizon_
        return self.lr_min + 0.5 * (self.lr - self.lr_min) * (1 + math.cos(math.pi * min(t, h) / h))

    def _set_lr(self, lr: float) -> None:
        for group in self.weight_optimizer_.param_groups:
            group["lr"] = lr

    # ---- the two steps ---------------------------------------------------------------
    def weight_step(self, batch, path):
        """One SGD step of the shared weights on ``loss(model, batch, path)`` with the
        architecture parameters frozen; returns the detached loss (no host sync)."""
        import torch

        frozen = [a for a in self.arch_parameters_ if a.requires_grad]
        for a in frozen:
            a.requires_grad_(False)
        try:
            loss = self.loss_(self.model_, batch, path)
            self.weight_optimizer_.zero_grad(set_to_none=True)
            loss.backward()
        finally:
            for a in frozen:
                a.requires_grad_(True)
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.weights_, self.grad_clip)
        self.weight_optimizer_.step()
        self.steps_ += 1
        return loss.detach()

    def _step(self, wb, ab, sample_path, arch_step, lr, index, losses, arch_out):
        """One alternation: the path is chosen after both batches are drawn."""
        path = None if sample_path is None else sample_path()
        if arch_step is not None and self.arch_first:
            arch_out.append(arch_step(ArchStep(batch=ab, weight_batch=wb, path=path, lr=lr, index=index)))
        losses.append(self.weight_step(wb, path))
        if arch_step is not None and not self.arch_first:
            arch_out.append(arch_step(ArchStep(batch=ab, weight_batch=wb, path=path, lr=lr, index=index)))

    # ---- batches ---------------------------------------------------------------------
    def _batch(self, data, idx):
        from .training import cutout

        X, y = data
        idx = idx.to(self.device_)
        x = X.index_select(0, idx)
        if self.cutout:
            x = cutout(x, self.cutout, self.generator_)
        return x, y.index_select(0, idx)

    def _epoch_bounds(self, n: int) -> list[tuple[int, int]]:
        bounds = [(i, min(i + self.batch_size, n)) for i in range(0, n, self.batch_size)]
        if self.drop_single and n > 1:
            bounds = [b for b in bounds if b[1] - b[0] > 1]
        return bounds

    def _perm(self, n: int):
        import torch

        return torch.randperm(n, generator=self.generator_)

    def _stream_indices(self):
        """The next weight batch of the endless permutation stream (``min(batch_size, n)``)."""
        import torch

        n = len(self.train_[1])
        size = min(self.batch_size, n)
        if self._order is None or len(self._order) < size:
            rest = torch.empty(0, dtype=torch.long) if self._order is None else self._order
            self._order = torch.cat([rest, self._perm(n)])
        idx, self._order = self._order[:size], self._order[size:]
        return idx

    def _random_arch_indices(self):
        import torch

        n = len(self.arch_data_[1])
        return torch.randint(n, (min(self.batch_size, n),), generator=self.generator_)

    def _need_arch_data(self, arch_step):
        if arch_step is not None and self.arch_data_ is None:
            raise ConfigError("an architecture step needs an architecture split: pass arch=(X, y) to setup()")

    # ---- loops -----------------------------------------------------------------------
    def train_epoch(self, epoch: int, *, sample_path: Callable | None = None,
                    arch_step: Callable | None = None) -> dict:
        """One epoch (``batching="epoch"``) at learning rate ``lr_at(epoch)``; returns
        ``{"epoch", "lr", "losses", "loss", "arch", "seconds"}`` with ``losses`` the
        per-step weight losses (a tensor), ``loss`` their mean and ``arch`` what the
        architecture hook returned per call.  Without ``arch_step`` only weights train."""
        if self.batching != "epoch":
            raise ConfigError("train_epoch needs batching='epoch'; use train_steps with a stream")
        self._need_arch_data(arch_step)
        start = time.perf_counter()
        lr = self.lr_at(epoch)
        self._set_lr(lr)
        self.model_.train()
        losses, arch_out = [], []
        n_w = len(self.train_[1])
        if self.alternate == "step" and arch_step is not None:
            n_a = len(self.arch_data_[1])
            perm_w, perm_a = self._perm(n_w), self._perm(n_a)
            for i, (lo, hi) in enumerate(self._epoch_bounds(min(n_w, n_a))):
                wb, ab = self._batch(self.train_, perm_w[lo:hi]), self._batch(self.arch_data_, perm_a[lo:hi])
                self._step(wb, ab, sample_path, arch_step, lr, i, losses, arch_out)
        else:
            perm_w = self._perm(n_w)
            for lo, hi in self._epoch_bounds(n_w):
                wb = self._batch(self.train_, perm_w[lo:hi])
                losses.append(self.weight_step(wb, None if sample_path is None else sample_path()))
            if arch_step is not None:
                perm_a = self._perm(len(self.arch_data_[1]))
                for i, (lo, hi) in enumerate(self._epoch_bounds(len(self.arch_data_[1]))):
                    ab = self._batch(self.arch_data_, perm_a[lo:hi])
                    arch_out.append(arch_step(ArchStep(batch=ab, lr=lr, index=i)))
        record = self._record(losses, arch_out, start, f"epoch {epoch + 1}")
        return {"epoch": epoch + 1, "lr": lr, **record}

    def train_steps(self, n: int, *, sample_path: Callable | None = None,
                    arch_step: Callable | None = None) -> dict:
        """``n`` steps from the stream (``batching="stream"``), each at ``lr_at(steps_)``
        (the schedule counts every weight step since :meth:`setup`); returns
        ``{"lr", "losses", "loss", "arch", "seconds"}`` as :meth:`train_epoch` does."""
        if self.batching != "stream":
            raise ConfigError("train_steps needs batching='stream'; use train_epoch for epochs")
        self._need_arch_data(arch_step)
        start = time.perf_counter()
        losses, arch_out = [], []
        lr = self.lr
        for i in range(n):
            self.model_.train()
            lr = self.lr_at(self.steps_)
            self._set_lr(lr)
            wb = self._batch(self.train_, self._stream_indices())
            ab = self._batch(self.arch_data_, self._random_arch_indices()) if arch_step is not None else None
            self._step(wb, ab, sample_path, arch_step, lr, i, losses, arch_out)
        return {"lr": lr, **self._record(losses, arch_out, start, f"steps {self.steps_ - n + 1}-{self.steps_}")}

    def _record(self, losses, arch_out, start, where: str) -> dict:
        import torch

        stacked = torch.stack(losses) if losses else torch.empty(0)
        mean = float(stacked.float().mean()) if losses else float("nan")
        if losses and not math.isfinite(mean):
            raise DivergedError(f"weight-sharing training diverged in {where}: mean weight loss is {mean}; "
                                f"lower the learning rate or set grad_clip")
        seconds = time.perf_counter() - start
        self.seconds_ += seconds
        return {"losses": stacked, "loss": mean, "arch": arch_out, "seconds": seconds}

    def fit(self, epochs: int, *, sample_path: Callable | None = None, arch_step: Callable | None = None,
            on_epoch: Callable[[dict], None] | None = None) -> list[dict]:
        """``epochs`` calls of :meth:`train_epoch`; ``on_epoch(record)`` after each."""
        records = []
        for epoch in range(epochs):
            record = self.train_epoch(epoch, sample_path=sample_path, arch_step=arch_step)
            records.append(record)
            if on_epoch is not None:
                on_epoch(record)
        return records
