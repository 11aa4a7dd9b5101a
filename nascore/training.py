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

GPU path.  ``precision`` runs forward passes under ``torch.autocast`` (bf16 on CPU or
CUDA; fp16 on CUDA only, with a gradient scaler and fused optimizers so that the scaler's
overflow check does not synchronize per step); the loss is computed in fp32.
``channels_last`` trains convolutions in NHWC memory order.  The standard CIFAR recipe of
DARTS and NAS-Bench-201 -- random crop from an image zero-padded by ``crop_padding``
pixels, horizontal flip with probability 1/2, then cutout -- is applied on the device,
vectorized over the batch and drawn from the trainer's seeded generator.  Splits that do
not fit in memory (:class:`nascore.data.StreamSplit`) are read through a DataLoader whose
batches follow the same generator-driven permutation as the in-memory path, so both give
the same batches, augmentations and weights for a seed.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import attrs

from .device import DEVICE_HELP, check_device_name, model_device, resolve_device
from .errors import CandidateTimeoutError, ConfigError, DivergedError
from .params import in_range, one_of, param


_AUTOCAST_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}


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
    device: str = param("auto", help=DEVICE_HELP, validator=check_device_name)
    timeout: float | None = param(None, help="seconds one fit may take before it is aborted",
                                  validator=in_range(0.0, low_open=True))
    eval_batch_size: int = param(1024, help="batch size for accuracy evaluation", validator=in_range(1))
    precision: str = param("fp32", help="fp32, bf16 (autocast, CPU or CUDA) or fp16 (autocast + grad scaler, CUDA only)",
                           validator=one_of("fp32", "bf16", "fp16"))
    channels_last: bool = param(False, help="channels-last (NHWC) memory format for image models and batches")
    random_crop: bool = param(False, help="random crop of each train image zero-padded by crop_padding (images only)")
    crop_padding: int | None = param(None, help="random_crop padding in pixels; none: image side / 8 (4 for 32x32)",
                                     validator=in_range(0))
    hflip: bool = param(False, help="flip each train image left-right with probability 1/2 (images only)")
    compile: bool = param(False, help="train through torch.compile(model) (the first epoch pays the compilation)")

    # ---- setup -----------------------------------------------------------------
    def resolve_device(self):
        """The ``torch.device`` of the ``device`` parameter (:func:`nascore.device.resolve_device`)."""
        return resolve_device(self.device)

    def make_optimizer(self, params, *, fused: bool = False):
        """The optimizer; ``fused`` picks the fused kernels (used with fp16 on CUDA)."""
        import torch

        extra = {"fused": True} if fused else {}
        if self.optimizer == "sgd":
            if self.nesterov and self.momentum == 0:
                raise ConfigError("nesterov=true needs momentum > 0")
            return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, nesterov=self.nesterov,
                                   weight_decay=self.weight_decay, **extra)
        cls = torch.optim.Adam if self.optimizer == "adam" else torch.optim.AdamW
        return cls(params, lr=self.lr, weight_decay=self.weight_decay, **extra)

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

        self.check_task(task)
        device = self.resolve_device()
        self.check_device(device)
        model.to(device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        data = _on_device(task, device)
        loop = _EpochLoop(self, model, data, device, seed, task.meta)
        curve, stopped, predicted = [], False, None
        try:
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
        finally:
            model.eval()
            if self.channels_last:  # handed back in the default layout, even after an error
                model.to(memory_format=torch.contiguous_format)
        return FitResult(curve=curve, stopped=stopped, predicted=predicted, seconds=loop.elapsed())

    def check_task(self, task) -> None:
        """Refuse options that do not apply to ``task`` (image augmentations and
        channels_last on tabular data), with the option named."""
        image_only = [name for name, on in (("cutout", self.cutout), ("random_crop", self.random_crop),
                                            ("hflip", self.hflip), ("channels_last", self.channels_last)) if on]
        if image_only and task.kind != "image":
            verb = "needs" if len(image_only) == 1 else "need"
            raise ConfigError(f"{', '.join(image_only)} {verb} an image task; {task.name!r} is {task.kind}")
        if self.crop_padding is not None and not self.random_crop:
            raise ConfigError("crop_padding is set but random_crop is off; set random_crop=true")

    def check_device(self, device) -> None:
        """Refuse fp16 off CUDA: its 5-bit exponent needs the CUDA grad scaler and
        kernels; bf16 (fp32's exponent range) is the CPU choice."""
        if self.precision == "fp16" and device.type != "cuda":
            raise ConfigError(f"precision='fp16' needs a CUDA device (got {device.type}); use precision='bf16' on CPU")

    def autocast(self, device):
        """The autocast context of ``precision`` on ``device`` (disabled for fp32)."""
        import torch

        if self.precision == "fp32":
            return torch.autocast(device_type=device.type, enabled=False)
        return torch.autocast(device_type=device.type, dtype=getattr(torch, _AUTOCAST_DTYPES[self.precision]))

    def padding_for(self, image_shape) -> int:
        """``crop_padding``, or the image side / 8 rounded (4 for 32x32, as in DARTS)."""
        if self.crop_padding is not None:
            return self.crop_padding
        return max(1, int(round(min(image_shape[-2:]) / 8)))

    def loss(self, output, target):
        """Cross-entropy, or the weighted sum over exits for a list of logits."""
        import torch.nn.functional as F

        if not isinstance(output, (list, tuple)):
            return F.cross_entropy(output.float(), target, label_smoothing=self.label_smoothing)
        weights = self.exit_weights if self.exit_weights is not None else [1.0] * len(output)
        if len(weights) != len(output):
            raise ConfigError(f"exit_weights has {len(weights)} entries but the model has {len(output)} exits")
        return sum(w * F.cross_entropy(o.float(), target, label_smoothing=self.label_smoothing)
                   for w, o in zip(weights, output))

    # ---- evaluation ------------------------------------------------------------
    def exit_accuracies(self, model, split) -> list[float]:
        """Accuracy in percent of each exit on ``split`` (one entry for a plain model)."""
        import torch

        n = len(split)
        if n == 0:
            raise ConfigError("cannot measure accuracy on an empty split")
        device = model_device(model, self.device)
        was_training = model.training
        model.eval()
        counts = None
        with torch.no_grad(), self.autocast(device):
            for xb, yb in split_batches(split, self.eval_batch_size, device):
                if self.channels_last and xb.dim() == 4:
                    xb = xb.contiguous(memory_format=torch.channels_last)
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

    def __init__(self, trainer: Trainer, model, data, device, seed: int, meta: dict | None = None):
        import torch

        from .data import StreamSplit

        self.t, self.model, self.device = trainer, model, device
        self.train = data["train"]
        self.streaming = isinstance(self.train, StreamSplit)
        self.fused = trainer.precision == "fp16" and device.type == "cuda"
        self.opt = trainer.make_optimizer(model.parameters(), fused=self.fused)
        # fp16 only: a scaler against gradient underflow; with fused optimizers its
        # overflow check stays on the device (no per-step synchronization)
        self.scaler = torch.amp.GradScaler(device.type) if trainer.precision == "fp16" else None
        self.forward = torch.compile(model) if trainer.compile else model
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.gen = torch.Generator(device=device).manual_seed(seed)
        self.augment = Augment.for_trainer(trainer, tuple(self.train_shape()), meta or {}, device)
        self.start = time.perf_counter()
        self.deadline = None if trainer.timeout is None else self.start + trainer.timeout

    def train_shape(self):
        return self.train.image_shape if self.streaming else self.train.X.shape[1:]

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def check_time(self, epoch: int) -> float:
        elapsed = self.elapsed()
        if self.deadline is not None and elapsed > self.t.timeout:
            raise CandidateTimeoutError(
                f"training exceeded its timeout of {self.t.timeout:g} s during epoch {epoch + 1} of {self.t.epochs}"
            )
        return elapsed

    def batches(self, perm, n_used: int, bs: int):
        """The epoch's ``(X, y)`` batches on the device in the order of ``perm``."""
        if not self.streaming:
            X, y = self.train.X, self.train.y
            for i in range(0, n_used, bs):
                idx = perm[i:min(i + bs, n_used)]
                yield X.index_select(0, idx), y.index_select(0, idx)
            return
        # the permutation is drawn on the device like the in-memory path's (same batches for
        # a seed); reading it on the host is the epoch's one extra synchronization
        order = perm[:n_used].cpu().tolist()
        chunks = [order[i:i + bs] for i in range(0, n_used, bs)]
        for xb, yb in self.train.loader(chunks, pin_memory=self.device.type == "cuda"):
            yield xb.to(self.device, non_blocking=True), yb.to(self.device, non_blocking=True)

    def run_epoch(self, epoch: int) -> dict:
        """One pass over the train split in a seeded random order; returns the record
        with the mean train loss (the epoch's single host synchronization)."""
        import torch

        t, model, opt, scaler = self.t, self.model, self.opt, self.scaler
        for group in opt.param_groups:
            group["lr"] = t.lr_at(epoch)
        model.train()
        n, bs = len(self.train), t.batch_size
        # a trailing batch of one sample would break BatchNorm; that sample (a random one
        # each epoch) is left out instead
        n_used = n - 1 if n % bs == 1 and n > 1 else n
        perm = torch.randperm(n, generator=self.gen, device=self.device)
        losses = []
        for xb, yb in self.batches(perm, n_used, bs):
            if self.augment is not None:
                xb = self.augment(xb, self.gen)
            if t.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with t.autocast(self.device):
                out = self.forward(xb)
            loss = t.loss(out, yb)
            opt.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                if t.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(self.params, t.grad_clip)
                opt.step()
            else:
                scaler.scale(loss).backward()
                if t.grad_clip is not None:
                    scaler.unscale_(opt)
                    torch.nn.utils.clip_grad_norm_(self.params, t.grad_clip)
                scaler.step(opt)
                scaler.update()
            losses.append(loss.detach())
            if self.deadline is not None and time.perf_counter() > self.deadline:
                self.check_time(epoch)
        sizes = torch.full((len(losses),), float(bs), device=self.device)
        sizes[-1] = n_used - bs * (len(losses) - 1)
        mean = float((torch.stack(losses).float() * sizes).sum() / n_used)
        if not math.isfinite(mean):
            hint = (f"lower lr (now {t.lr:.3g}) or grad_clip (now {t.grad_clip:g})"
                    if t.grad_clip is not None else f"lower lr (now {t.lr:.3g}) or set grad_clip")
            raise DivergedError(f"training diverged: mean train loss is {mean} in epoch {epoch + 1}; {hint}")
        return {"epoch": epoch + 1, "train_loss": mean, "valid_accuracy": None}


@attrs.define
class Augment:
    """The train-time image augmentations of a Trainer, in the order of the DARTS /
    NAS-Bench-201 CIFAR recipe: random crop with padding, horizontal flip, cutout.  Each
    draws from the generator it is given, in that order, so a seed fixes them all.
    ``fill`` is the padding value per channel: black (pixel 0) after the task's
    normalization, ``-mean/std``, as when padding raw images before normalizing."""

    padding: int = 0
    flip: bool = False
    cutout: int = 0
    fill: object = None

    @classmethod
    def for_trainer(cls, trainer: Trainer, image_shape: tuple, meta: dict, device):
        """The augmentations ``trainer`` asks for (None when it asks for none)."""
        import torch

        if not (trainer.random_crop or trainer.hflip or trainer.cutout):
            return None
        fill = None
        if trainer.random_crop and "mean" in meta and "std" in meta and len(meta["mean"]) == image_shape[0]:
            fill = -torch.tensor(meta["mean"], device=device) / torch.tensor(meta["std"], device=device)
        return cls(padding=trainer.padding_for(image_shape) if trainer.random_crop else 0,
                   flip=trainer.hflip, cutout=trainer.cutout, fill=fill)

    def __call__(self, x, generator):
        if self.padding:
            x = random_crop(x, self.padding, generator, fill=self.fill)
        if self.flip:
            x = random_flip(x, generator)
        if self.cutout:
            x = cutout(x, self.cutout, generator)
        return x


def random_crop(x, padding: int, generator, *, fill=None):
    """Crop each image of ``x`` (N×C×H×W) at an offset uniform in ``[0, 2·padding]²`` of
    the image padded by ``padding`` pixels of ``fill`` (a scalar or one value per
    channel; default 0) -- torchvision's ``RandomCrop(H, padding)`` for a whole batch in
    one gather on ``x``'s device."""
    import torch

    if padding == 0:
        return x
    n, c, h, w = x.shape
    hp, wp = h + 2 * padding, w + 2 * padding
    padded = x.new_empty((n, c, hp, wp))
    if fill is None:
        padded.fill_(0.0)
    else:
        padded.copy_(torch.as_tensor(fill, dtype=x.dtype, device=x.device).reshape(-1, 1, 1).expand(c, hp, wp))
    padded[:, :, padding:padding + h, padding:padding + w] = x
    oy = _randint(2 * padding + 1, (n, 1, 1), generator, x.device)
    ox = _randint(2 * padding + 1, (n, 1, 1), generator, x.device)
    rows = oy + torch.arange(h, device=x.device)[None, :, None]
    cols = ox + torch.arange(w, device=x.device)[None, None, :]
    flat = (rows * wp + cols).reshape(n, 1, h * w).expand(n, c, h * w)
    return padded.reshape(n, c, hp * wp).gather(2, flat).reshape(n, c, h, w)


def random_flip(x, generator):
    """Mirror each image of ``x`` (N×C×H×W) left-right with probability 1/2."""
    import torch

    gen_device = x.device if generator is None else generator.device
    flip = (torch.rand(x.shape[0], generator=generator, device=gen_device) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def cutout(x, length: int, generator):
    """Zero one ``length``×``length`` square per image of the batch ``x`` (N×C×H×W), its
    centre uniform over the image and the square clipped at the border (DeVries & Taylor,
    2017, Sec. 3); vectorized on ``x``'s device with the given generator."""
    import torch

    n, _, h, w = x.shape
    cy = _randint(h, (n, 1), generator, x.device) - length // 2
    cx = _randint(w, (n, 1), generator, x.device) - length // 2
    rows = torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device)
    in_y = (rows >= cy) & (rows < cy + length)
    in_x = (cols >= cx) & (cols < cx + length)
    mask = in_y[:, None, :, None] & in_x[:, None, None, :]
    return x.masked_fill(mask, 0.0)


def _randint(high: int, size: tuple, generator, device):
    """``torch.randint`` drawn on the generator's device (a CPU generator may drive CUDA
    batches, as in the weight-sharing trainer) and placed on ``device``."""
    import torch

    gen_device = device if generator is None else generator.device
    return torch.randint(high, size, generator=generator, device=gen_device).to(device)


def _on_device(task, device) -> dict:
    """In-memory splits moved to ``device`` once; streaming splits stay where they are."""
    from .data import Split, StreamSplit

    return {k: s if isinstance(s, StreamSplit) else Split(s.X.to(device), s.y.to(device))
            for k, s in (("train", task.train), ("valid", task.valid))}


def split_batches(split, batch_size: int, device):
    """``(X, y)`` batches of ``split`` in order on ``device``: slices of an in-memory
    split, or a DataLoader over a :class:`nascore.data.StreamSplit`."""
    from .data import StreamSplit

    if isinstance(split, StreamSplit):
        batches = [list(range(i, min(i + batch_size, len(split)))) for i in range(0, len(split), batch_size)]
        for xb, yb in split.loader(batches, pin_memory=device.type == "cuda"):
            yield xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        return
    for i in range(0, len(split), batch_size):
        yield (split.X[i:i + batch_size].to(device, non_blocking=True),
               split.y[i:i + batch_size].to(device, non_blocking=True))


def _cuda_indices(device) -> list[int]:
    if device.type != "cuda":
        return []
    import torch

    return [device.index if device.index is not None else torch.cuda.current_device()]
