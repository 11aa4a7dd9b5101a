"""The one Trainer every evaluator and plugin uses.

Design for speed (DESIGN.md, "Performance rules"): the splits are moved to the device
once per ``fit`` and batched by a seeded index permutation -- no DataLoader, no worker
processes, no per-step host synchronization.  The training loss is accumulated on the
device and read once per epoch, which is also when divergence (NaN/inf) is checked.

Multi-exit models (a forward pass returning a list of logits, as in MSDNet-style anytime
networks and MS-RANAS) are trained on the weighted sum of the exits' cross-entropies
``sum_k w_k CE(f_k(x), y)`` with ``w_k = 1`` unless ``exit_weights`` is set.  Cutout
(DeVries & Taylor, 2017, "Improved Regularization of Convolutional Neural Networks with
Cutout") zeroes one ``cutout``×``cutout`` square per image, centred uniformly on the
image and clipped at its border, after normalization as in the DARTS training code.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import attrs

from .errors import CandidateTimeoutError, ConfigError, DivergedError
from .params import in_range, one_of, param


def _device_name(inst, attribute, value):
    if value not in ("auto", "cpu", "cuda") and not str(value).startswith("cuda:"):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {value!r}")


def _weights(inst, attribute, value):
    if value is not None and (not value or any(w < 0 for w in value)):
        raise ValueError(f"exit_weights must be a non-empty list of non-negative numbers, got {value!r}")


@attrs.define(kw_only=True)
class FitResult:
    """What :meth:`Trainer.fit` returns.  ``curve`` has one record per trained epoch:
    ``epoch`` (1-based), ``train_loss`` (mean over the epoch's samples),
    ``valid_accuracy`` (percent, last exit; None on epochs skipped by ``valid_every``),
    ``seconds`` (since ``fit`` started) and, for multi-exit models, ``valid_exit_accuracies``."""

    curve: list
    stopped: bool = False
    predicted: float | None = None
    seconds: float = 0.0

    @property
    def epochs(self) -> int:
        return len(self.curve)


@attrs.define(kw_only=True)
class Trainer:
    """Supervised training of a classifier on a :class:`nascore.data.Task`."""

    epochs: int = param(10, help="training epochs", validator=in_range(1))
    batch_size: int = param(128, help="mini-batch size", validator=in_range(1))
    optimizer: str = param("sgd", help="sgd, adam or adamw", validator=one_of("sgd", "adam", "adamw"))
    lr: float = param(0.05, help="initial learning rate", validator=in_range(0.0, low_open=True))
    momentum: float = param(0.9, help="SGD momentum", validator=in_range(0.0, 1.0, high_open=True))
    nesterov: bool = param(False, help="Nesterov momentum (SGD)")
    weight_decay: float = param(3e-4, help="L2 weight decay (decoupled for adamw)", validator=in_range(0.0))
    schedule: str = param("cosine", help="learning-rate schedule per epoch: cosine, step or none",
                          validator=one_of("cosine", "step", "none"))
    step_size: int = param(30, help="step schedule: epochs between decays", validator=in_range(1))
    gamma: float = param(0.1, help="step schedule: decay factor", validator=in_range(0.0, low_open=True))
    label_smoothing: float = param(0.0, help="label smoothing of the cross-entropy",
                                   validator=in_range(0.0, 1.0, high_open=True))
    cutout: int = param(0, help="cutout square side in pixels (images only); 0 disables", validator=in_range(0))
    exit_weights: list[float] | None = param(None, help="loss weight per exit of a multi-exit model; none: all 1",
                                             validator=_weights)
    grad_clip: float | None = param(5.0, help="clip the gradient norm to this value; none disables",
                                    validator=in_range(0.0, low_open=True))
    device: str = param("auto", help="auto (CUDA when available), cpu, cuda or cuda:N", validator=_device_name)
    timeout: float | None = param(None, help="seconds one fit may take before it is aborted",
                                  validator=in_range(0.0, low_open=True))
    eval_batch_size: int = param(1024, help="batch size for accuracy evaluation", validator=in_range(1))

    # ---- setup -----------------------------------------------------------------
    def resolve_device(self):
        import torch

        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"device {self.device!r} requested but CUDA is not available; use device='cpu'")
        return torch.device(self.device)

    def make_optimizer(self, params):
        import torch

        if self.optimizer == "sgd":
            if self.nesterov and self.momentum == 0:
                raise ConfigError("nesterov=true needs momentum > 0")
            return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, nesterov=self.nesterov,
                                   weight_decay=self.weight_decay)
        cls = torch.optim.Adam if self.optimizer == "adam" else torch.optim.AdamW
        return cls(params, lr=self.lr, weight_decay=self.weight_decay)

    def lr_at(self, epoch: int) -> float:
        """Learning rate of 0-based ``epoch``: cosine annealing to 0 over ``epochs``
        (Loshchilov & Hutter, SGDR, without restarts), or step decay."""
        if self.schedule == "cosine":
            return 0.5 * self.lr * (1.0 + math.cos(math.pi * epoch / self.epochs))
        if self.schedule == "step":
            return self.lr * self.gamma ** (epoch // self.step_size)
        return self.lr

    # ---- training --------------------------------------------------------------
    def fit(self, model, task, *, seed: int = 0, should_stop: Callable | None = None,
            progress: Callable | None = None, valid_every: int = 1) -> FitResult:
        """Train ``model`` in place on ``task.train``; validate on ``task.valid``.

        After each epoch but the last, ``should_stop(curve, epochs)`` may return
        ``(True, predicted)`` to end training early (``FitResult.stopped``);
        ``progress(record)`` is called with each epoch's curve record.  The model's
        random draws (dropout), the batch order and cutout are seeded by ``seed``
        without disturbing the caller's global random state."""
        import torch

        if self.cutout and task.kind != "image":
            raise ConfigError(f"cutout needs an image task; {task.name!r} is {task.kind}")
        device = self.resolve_device()
        model.to(device)
        data = _on_device(task, device)
        loop = _EpochLoop(self, model, data, device, seed)
        curve, stopped, predicted = [], False, None
        with torch.random.fork_rng(devices=_cuda_indices(device)):
            torch.manual_seed(seed)
            for epoch in range(self.epochs):
                record = loop.run_epoch(epoch)
                if (epoch + 1) % max(valid_every, 1) == 0 or epoch + 1 == self.epochs:
                    accs = self.exit_accuracies(model, data["valid"]) if len(data["valid"]) else [None]
                    record["valid_accuracy"] = accs[-1]
                    if len(accs) > 1:
                        record["valid_exit_accuracies"] = accs
                record["seconds"] = loop.check_time(epoch)
                curve.append(record)
                if progress is not None:
                    progress(record)
                if should_stop is not None and epoch + 1 < self.epochs:
                    stop, pred = should_stop(curve, self.epochs)
                    if stop:
                        stopped, predicted = True, (None if pred is None else float(pred))
                        break
        model.eval()
        return FitResult(curve=curve, stopped=stopped, predicted=predicted, seconds=loop.elapsed())

    def loss(self, output, target):
        """Cross-entropy, or the weighted sum over exits for a list of logits."""
        import torch.nn.functional as F

        if not isinstance(output, (list, tuple)):
            return F.cross_entropy(output, target, label_smoothing=self.label_smoothing)
        weights = self.exit_weights if self.exit_weights is not None else [1.0] * len(output)
        if len(weights) != len(output):
            raise ConfigError(f"exit_weights has {len(weights)} entries but the model has {len(output)} exits")
        return sum(w * F.cross_entropy(o, target, label_smoothing=self.label_smoothing)
                   for w, o in zip(weights, output))

    # ---- evaluation ------------------------------------------------------------
    def exit_accuracies(self, model, split) -> list[float]:
        """Accuracy in percent of each exit on ``split`` (one entry for a plain model)."""
        import torch

        n = len(split)
        if n == 0:
            raise ConfigError("cannot measure accuracy on an empty split")
        device = _model_device(model, self)
        was_training = model.training
        model.eval()
        counts = None
        with torch.no_grad():
            for i in range(0, n, self.eval_batch_size):
                xb = split.X[i:i + self.eval_batch_size].to(device, non_blocking=True)
                yb = split.y[i:i + self.eval_batch_size].to(device, non_blocking=True)
                out = model(xb)
                outs = out if isinstance(out, (list, tuple)) else [out]
                c = torch.stack([(o.argmax(dim=1) == yb).sum() for o in outs])
                counts = c if counts is None else counts + c
        model.train(was_training)
        return (counts.double() * (100.0 / n)).tolist()

    def accuracy(self, model, split) -> float:
        """Accuracy in percent on ``split`` (the last exit of a multi-exit model)."""
        return self.exit_accuracies(model, split)[-1]


class _EpochLoop:
    """The inner loop of one ``fit``: state shared by its epochs."""

    def __init__(self, trainer: Trainer, model, data, device, seed: int):
        import torch

        self.t, self.model, self.device = trainer, model, device
        self.X, self.y = data["train"].X, data["train"].y
        self.opt = trainer.make_optimizer(model.parameters())
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.gen = torch.Generator(device=device).manual_seed(seed)
        self.start = time.perf_counter()
        self.deadline = None if trainer.timeout is None else self.start + trainer.timeout

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def check_time(self, epoch: int) -> float:
        elapsed = self.elapsed()
        if self.deadline is not None and elapsed > self.t.timeout:
            raise CandidateTimeoutError(
                f"training exceeded its timeout of {self.t.timeout:g} s during epoch {epoch + 1} of {self.t.epochs}"
            )
        return elapsed

    def run_epoch(self, epoch: int) -> dict:
        """One pass over the train split in a seeded random order; returns the record
        with the mean train loss (the epoch's single host synchronization)."""
        import torch

        t, model, opt = self.t, self.model, self.opt
        for group in opt.param_groups:
            group["lr"] = t.lr_at(epoch)
        model.train()
        n, bs = len(self.y), t.batch_size
        # a trailing batch of one sample would break BatchNorm; that sample (a random one
        # each epoch) is left out instead
        n_used = n - 1 if n % bs == 1 and n > 1 else n
        perm = torch.randperm(n, generator=self.gen, device=self.device)
        losses = []
        for i in range(0, n_used, bs):
            idx = perm[i:min(i + bs, n_used)]
            xb, yb = self.X.index_select(0, idx), self.y.index_select(0, idx)
            if t.cutout:
                xb = cutout(xb, t.cutout, self.gen)
            loss = t.loss(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if t.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(self.params, t.grad_clip)
            opt.step()
            losses.append(loss.detach())
            if self.deadline is not None and time.perf_counter() > self.deadline:
                self.check_time(epoch)
        sizes = torch.full((len(losses),), float(bs), device=self.device)
        sizes[-1] = n_used - bs * (len(losses) - 1)
        mean = float((torch.stack(losses).float() * sizes).sum() / n_used)
        if not math.isfinite(mean):
            raise DivergedError(
                f"training diverged: mean train loss is {mean} in epoch {epoch + 1}; lower lr or set grad_clip"
            )
        return {"epoch": epoch + 1, "train_loss": mean, "valid_accuracy": None}


def cutout(x, length: int, generator):
    """Zero one ``length``×``length`` square per image of the batch ``x`` (N×C×H×W), its
    centre uniform over the image and the square clipped at the border (DeVries & Taylor,
    2017, Sec. 3); vectorized on ``x``'s device with the given generator."""
    import torch

    n, _, h, w = x.shape
    cy = torch.randint(h, (n, 1), generator=generator, device=x.device) - length // 2
    cx = torch.randint(w, (n, 1), generator=generator, device=x.device) - length // 2
    rows = torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device)
    in_y = (rows >= cy) & (rows < cy + length)
    in_x = (cols >= cx) & (cols < cx + length)
    mask = in_y[:, None, :, None] & in_x[:, None, None, :]
    return x.masked_fill(mask, 0.0)


def _on_device(task, device) -> dict:
    from .data import Split

    return {k: Split(s.X.to(device), s.y.to(device)) for k, s in
            (("train", task.train), ("valid", task.valid))}


def _cuda_indices(device) -> list[int]:
    if device.type != "cuda":
        return []
    import torch

    return [device.index if device.index is not None else torch.cuda.current_device()]


def _model_device(model, trainer: Trainer):
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return trainer.resolve_device()
