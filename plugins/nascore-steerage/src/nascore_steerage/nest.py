"""NeST grow-and-prune synthesis of the convolutional layers (STEERAGE section 4.6.2;
Dai, Yin and Jha, "NeST", IEEE Trans. Computers 2019).

Operations, each followed by training and a validation measurement:

* **feature-map growth** -- for each growth pair (a convolution whose output channels
  feed exactly one consumer: the next convolution or the classifier), draw
  ``candidates`` random kernels, add each in turn as a new feature map whose outgoing
  connections -- as many as the consumer's connection density gives, those with the
  largest ``|dL/dw|`` (NeST's gradient-based connection growth) -- start one normalized
  steepest-descent step from zero, measure the training-batch loss, and keep the
  ``maps`` kernels that reduce it the most;
* **partial-area convolution** -- "different parts of the images are of interest to
  different kernels": per output feature map, the mean absolute activation over
  ``area_samples`` training images ranks the positions, and the ``area_ratio`` share of
  the still-computed positions with the least activation is pruned (the map's
  ``area_mask``); those outputs -- and their multiply-adds -- are no longer computed,
  and the classifier weights that read only pruned outputs are removed too;
* **connection pruning** -- the ``prune_ratio`` smallest-magnitude active kernel weights
  of each convolution are removed (NeST's pruning phase; it is what lowers the weight
  count, as partial-area convolution lowers the FLOPs).

Growth may take the network above its input's size (no limit unless one is set); the
best step on validation (k-fold cross-validation on tabular data) is kept.

Any CNN works: plain ``nn.Conv2d`` layers are converted to masked ones (same function);
growth needs the model's ``growth_pairs()`` (STEERAGE's spaces provide them).
"""

from __future__ import annotations

import copy

import attrs
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import nascore
from nascore.api import ConfigError
from nascore.api import in_range
from nascore.api import Compressed

from .layers import MaskedConv2d
from .mlp import FeedForward
from .networks import SteerageNet
from .synthesis import SelectionParams, device_of, finish, make_trainer, measure, prune_smallest, set_module, train_batch

OPERATIONS = ("grow", "area", "prune")


# --------------------------------------------------------------------------- module surgery


def masked_convs(model: nn.Module) -> list[tuple[str, MaskedConv2d]]:
    """Convert every plain ``nn.Conv2d`` of ``model`` to a MaskedConv2d (in place, same
    weights) and return ``(path, conv)`` for all of them."""
    for path, m in list(model.named_modules()):
        if type(m) is nn.Conv2d:
            if m.groups != 1 or m.dilation != (1, 1) or isinstance(m.padding, str) or m.padding_mode != "zeros":
                continue
            new = MaskedConv2d(m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0], m.padding[0],
                               bias=m.bias is not None).to(m.weight.device)
            new.load_state_dict(m.state_dict(), strict=False)
            set_module(model, path, new)
    return [(p, m) for p, m in model.named_modules() if isinstance(m, MaskedConv2d)]


def _conv_like(old: MaskedConv2d, cin: int, cout: int) -> MaskedConv2d:
    new = MaskedConv2d(cin, cout, old.kernel_size[0], old.stride[0], old.padding[0], bias=old.bias is not None,
                       weight_bits=old.weight_bits).to(old.weight.device)
    new.train(old.training)
    return new


@torch.no_grad()
def add_output_maps(conv: MaskedConv2d, kernels: torch.Tensor) -> MaskedConv2d:
    """A copy of ``conv`` with the output channels ``kernels`` (n×C_in×k×k) appended."""
    n = kernels.shape[0]
    new = _conv_like(conv, conv.in_channels, conv.out_channels + n)
    new.weight.copy_(torch.cat([conv.weight, kernels.to(conv.weight)]))
    new.weight_mask.copy_(torch.cat([conv.weight_mask, torch.ones_like(kernels).to(conv.weight)]))
    if conv.bias is not None:
        new.bias.copy_(torch.cat([conv.bias, torch.zeros(n).to(conv.bias)]))
    if conv.area_mask is not None:
        ones = torch.ones(n, *conv.area_mask.shape[1:]).to(conv.area_mask)
        new.area_mask = torch.cat([conv.area_mask, ones])
    return new


@torch.no_grad()
def add_input_maps(conv: MaskedConv2d, weights: torch.Tensor) -> MaskedConv2d:
    """A copy of ``conv`` reading ``weights.shape[1]`` more input channels."""
    n = weights.shape[1]
    new = _conv_like(conv, conv.in_channels + n, conv.out_channels)
    new.weight.copy_(torch.cat([conv.weight, weights.to(conv.weight)], dim=1))
    new.weight_mask.copy_(torch.cat([conv.weight_mask, torch.ones_like(weights).to(conv.weight)], dim=1))
    if conv.bias is not None:
        new.bias.copy_(conv.bias)
    new.area_mask = None if conv.area_mask is None else conv.area_mask.clone()
    return new


@torch.no_grad()
def add_norm_channels(bn: nn.BatchNorm2d, n: int) -> nn.BatchNorm2d:
    new = nn.BatchNorm2d(bn.num_features + n, eps=bn.eps, momentum=bn.momentum).to(bn.weight.device)
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(new, name)[: bn.num_features] = getattr(bn, name)
    new.train(bn.training)
    return new


def grow_pair(model, pair, kernels: torch.Tensor, out_weights: torch.Tensor | None,
              out_mask: torch.Tensor | None = None) -> int:
    """Add the feature maps ``kernels`` to ``pair``'s producer, its norm and consumer;
    the consumer's new inputs get ``out_weights`` (zeros when None) on the connections
    ``out_mask`` activates (all when None).  Returns the number of new consumer inputs
    (channels, or flattened features of a classifier)."""
    prod_path, norm_path, cons_path = pair
    producer = model.get_submodule(prod_path)
    consumer = model.get_submodule(cons_path)
    n = kernels.shape[0]
    set_module(model, prod_path, add_output_maps(producer, kernels))
    if norm_path is not None:
        set_module(model, norm_path, add_norm_channels(model.get_submodule(norm_path), n))
    if isinstance(consumer, FeedForward):
        count = n * (consumer.layers[0].in_features // producer.out_channels)
        weights = torch.zeros(consumer.layers[0].out_features, count) if out_weights is None else out_weights
        consumer.add_inputs(count, weights)
        if out_mask is not None:
            with torch.no_grad():
                consumer.layers[0].weight_mask[:, -count:] = out_mask.to(consumer.layers[0].weight_mask)
                consumer.layers[0].apply_mask()
        return count
    if isinstance(consumer, MaskedConv2d):
        weights = torch.zeros(consumer.out_channels, n, *consumer.kernel_size) if out_weights is None else out_weights
        new = add_input_maps(consumer, weights)
        if out_mask is not None:
            with torch.no_grad():
                new.weight_mask[:, -n:] = out_mask.to(new.weight_mask)
                new.apply_mask()
        set_module(model, cons_path, new)
        return n
    raise ConfigError(f"NeST cannot grow into a {type(consumer).__name__} at {cons_path!r}")


def consumer_layer(model, cons_path: str):
    """The masked layer reading a growth pair's feature maps (a classifier's first one)."""
    consumer = model.get_submodule(cons_path)
    return consumer.layers[0] if isinstance(consumer, FeedForward) else consumer


# --------------------------------------------------------------------------- operations


def _rms(t: torch.Tensor, default: float = 0.1) -> float:
    return float(t.detach().square().mean().sqrt()) if t.numel() else default


def try_kernel(model, pair, kernel: torch.Tensor, X, y) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Training-batch loss after adding feature map ``kernel`` whose outgoing connections
    are the consumer's share of active ones (its connection density) with the largest
    ``|dL/dw|``, starting at ``-dL/dw`` scaled to the consumer's weight RMS; returns
    (loss, weights, mask)."""
    trial = copy.deepcopy(model)
    count = grow_pair(trial, pair, kernel, None)
    trial.train()
    trial.zero_grad(set_to_none=True)
    F.cross_entropy(trial(X), y).backward()
    weight = consumer_layer(trial, pair[2]).weight
    grad = weight.grad[:, -count:]
    ref = consumer_layer(model, pair[2])
    keep = max(1, round(float(ref.weight_mask.mean()) * grad.numel()))
    mask = torch.zeros_like(grad)
    mask.view(-1)[grad.abs().flatten().topk(keep).indices] = 1.0
    out = -grad * mask * (_rms(ref.weight[ref.weight_mask > 0]) / max(_rms(grad[mask > 0]), 1e-12))
    with torch.no_grad():
        weight[:, -count:] = out
        consumer_layer(trial, pair[2]).weight_mask[:, -count:] = mask
        loss = float(F.cross_entropy(trial(X), y))
    return loss, out.detach(), mask


def grow_feature_maps(model, task, rng, candidates: int, maps: int, samples: int) -> int:
    """Loss-guided feature-map growth on every growth pair; returns maps added."""
    pairs = model.growth_pairs() if isinstance(model, SteerageNet) else []  # other networks declare no growth pairs
    device = device_of(model)
    X, y = train_batch(task, samples, rng, device)
    added = 0
    for pair in pairs:
        producer = model.get_submodule(pair[0])
        scale = _rms(producer.weight[producer.weight_mask > 0])
        trials = []
        for _ in range(candidates):
            kernel = torch.as_tensor(rng.normal(0, scale, (1, *producer.weight.shape[1:])), dtype=torch.float32)
            loss, out, mask = try_kernel(model, pair, kernel.to(device), X, y)
            trials.append((loss, kernel, out, mask))
        trials.sort(key=lambda t: t[0])
        chosen = trials[: min(maps, len(trials))]
        grow_pair(model, pair, torch.cat([t[1] for t in chosen]).to(device), torch.cat([t[2] for t in chosen], dim=1),
                  torch.cat([t[3] for t in chosen], dim=1))
        added += len(chosen)
    return added


@torch.no_grad()
def partial_area(model, convs, task, rng, ratio: float, samples: int) -> int:
    """Prune the ``ratio`` share of each feature map's computed positions with the
    lowest mean |activation| (partial-area convolution); returns positions pruned."""
    X, _ = train_batch(task, samples, rng, device_of(model))
    stats = {}
    hooks = [conv.register_forward_hook(lambda m, i, o, key=path: stats.__setitem__(key, o.abs().mean(dim=0)))
             for path, conv in convs]
    was = model.training
    model.eval()
    try:
        model(X)
    finally:
        model.train(was)
        for h in hooks:
            h.remove()
    pruned = 0
    for path, conv in convs:
        act = stats.get(path)
        if act is None or act.shape[-1] * act.shape[-2] < 2:
            continue
        mask = conv.area_mask if conv.area_mask is not None else torch.ones_like(act)
        flat_mask, flat_act = mask.flatten(1), act.flatten(1)
        keep_n = torch.clamp((flat_mask.sum(dim=1) * (1 - ratio)).round(), min=1).long()
        scores = torch.where(flat_mask > 0, flat_act, torch.full_like(flat_act, -1.0))
        order = scores.argsort(dim=1, descending=True)
        ranks = torch.empty_like(order)
        ranks.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
        new = ((ranks < keep_n[:, None]) & (flat_mask > 0)).float().view_as(act)
        pruned += int(mask.sum() - new.sum())
        conv.area_mask = new
    return pruned


@torch.no_grad()
def remove_dead_classifier_inputs(model) -> int:
    """Deactivate the classifier's input connections that read only area-pruned outputs
    (section 4.6.2: partial-area convolution also removes the weights that read them).

    For a growth pair (conv -> classifier) whose conv sits in an ``nn.Sequential``
    followed only by activations and pooling, the conv's ``area_mask`` is pushed through
    those modules: a ReLU keeps a 0/1 liveness map, a max or average pool of it is
    nonzero exactly where its window holds a computed position.  Flattened positions
    with liveness 0 are always 0, so the weights reading them are dead.  Returns how
    many connections were removed."""
    if not isinstance(model, SteerageNet):
        return 0
    removed = 0
    for prod_path, _, cons_path in model.growth_pairs():
        consumer = model.get_submodule(cons_path)
        producer = model.get_submodule(prod_path)
        if not isinstance(consumer, FeedForward) or producer.area_mask is None:
            continue
        parent_path, _, leaf = prod_path.rpartition(".")
        parent = model.get_submodule(parent_path) if parent_path else model
        if not isinstance(parent, nn.Sequential) or not leaf.isdigit():
            continue
        live = (producer.area_mask > 0).float()[None]
        for m in list(parent)[int(leaf) + 1:]:
            if not isinstance(m, (nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.Identity)):
                live = None
                break
            live = m(live)
        if live is None:
            continue
        dead = (live.flatten(1)[0] <= 0)
        first = consumer.layers[0]
        if dead.numel() != first.in_features:
            continue
        before = int(first.weight_mask.sum())
        first.weight_mask[:, dead] = 0.0
        first.apply_mask()
        removed += before - int(first.weight_mask.sum())
    return removed


# --------------------------------------------------------------------------- compressor


@attrs.define(slots=False)
class NeST(SelectionParams):
    """NeST local search on the convolutional layers (feature-map growth, partial-area
    convolution, connection pruning), best on validation kept."""

    conformance = {"space": {"name": "lenet5", "input_size": 8},
                   "params": {"iterations": 3, "candidates": 2, "max_params_ratio": 1.0, "max_flops_ratio": 1.0}}

    iterations: int = nascore.param(6, help="operations applied (each followed by training)", validator=in_range(0))
    schedule: list[str] = nascore.param(factory=lambda: list(OPERATIONS),
                                        help="cycle of operations: grow, area, prune")
    epochs: int = nascore.param(1, help="training epochs after each operation", validator=in_range(1))
    lr: float | None = nascore.param(None, help="learning rate of that training (none: the run's)",
                                     validator=in_range(0.0, low_open=True))
    maps: int = nascore.param(2, help="feature maps added per growth pair per growth", validator=in_range(0))
    candidates: int = nascore.param(8, help="random kernels tried per growth pair", validator=in_range(1))
    area_ratio: float = nascore.param(0.3, help="share of each map's computed positions pruned per area step",
                                      validator=in_range(0.0, 1.0, high_open=True))
    prune_ratio: float = nascore.param(0.3, help="share of each convolution's active weights pruned per prune step",
                                       validator=in_range(0.0, 1.0, high_open=True))
    samples: int = nascore.param(512, help="training samples for growth losses and area statistics",
                                 validator=in_range(1))
    seed: int = nascore.param(0, help="seed of batches and candidate kernels")

    def __attrs_post_init__(self):
        bad = [op for op in self.schedule if op not in OPERATIONS]
        if bad or not self.schedule:
            raise ConfigError(f"nest schedule: {bad[0] if bad else 'empty'!r} is not one of {', '.join(OPERATIONS)}")

    def apply(self, op: str, model, task, rng) -> int:
        if op == "grow":
            return grow_feature_maps(model, task, rng, self.candidates, self.maps, self.samples)
        convs = masked_convs(model)
        if op == "area":
            pruned = partial_area(model, convs, task, rng, self.area_ratio, self.samples)
            remove_dead_classifier_inputs(model)
            return pruned
        with torch.no_grad():
            return sum(prune_smallest([conv], self.prune_ratio) for _, conv in convs)

    def compress(self, arch, model, task, ctx) -> Compressed:
        original = model
        model = copy.deepcopy(model)
        if not masked_convs(model):
            raise ConfigError("nest needs a model with convolutions; use scann for feed-forward networks")
        trainer = make_trainer(ctx, self.epochs, self.lr)
        seed = int(getattr(ctx, "seed", 0))
        before = measure(model, task, trainer, test=True)
        sel = self.selection(model, before)
        steps = self._chain(model, task, trainer, seed, lambda m, op: sel.offer(m, measure(m, task, trainer), op))
        scores = self.cross_validate(
            lambda m, sub, record: self._chain(m, sub, trainer, seed, lambda mm, op: record(mm)),
            original, task, ctx, seed)
        if scores is not None:
            sel.rescore(scores)
        chosen_metrics, chosen, tuned = finish(sel.best(), task, trainer, self.final_epochs, seed + 10_000)
        after = measure(chosen, task, trainer, test=True)
        convs = masked_convs(chosen)
        info = {"operations": steps, "history": sel.history, "chosen_step": chosen_metrics["step"],
                "final_training_kept": tuned, "cv_scores": scores,
                "feature_maps": [int(c.out_channels) for _, c in convs],
                "area_kept": [float(c.area_mask.mean()) if c.area_mask is not None else 1.0 for _, c in convs]}
        return Compressed(arch=arch, model=chosen, before=before, after=after, info=info)

    def _chain(self, model, task, trainer, seed: int, record) -> list[dict]:
        """The schedule on ``model`` (edited in place): each operation, training, then
        ``record(model, op)``."""
        masked_convs(model)
        rng = np.random.default_rng(self.seed)
        steps = []
        for i in range(self.iterations):
            op = self.schedule[i % len(self.schedule)]
            steps.append({"op": op, "changed": self.apply(op, model, task, rng)})
            trainer.fit(model, task, seed=seed + i + 1)
            record(model, op)
        return steps
