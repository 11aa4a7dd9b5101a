"""SCANN grow-and-prune synthesis of the feed-forward classifier (STEERAGE section 3.1,
4.6.1, Algorithm 3; Hassantabar, Wang and Jha, "SCANN", arXiv:1904.09090).

Three architecture-changing operations on the network's :class:`~.mlp.FeedForward`
classifier, each followed by training and a validation measurement:

* **connection growth** -- activate the inactive connections whose loss gradient
  ``|dL/dw|`` is largest (``dL/dW_{j,m} = delta_j^T h_m`` over a training batch, for
  existing and not-yet-existing blocks alike), initialized along ``-dL/dw`` with the
  RMS of the layer's active weights; ``growth_ratio`` of the active connections;
* **neuron growth** -- add ``neuron_ratio`` of each hidden layer's neurons, either by
  duplicating random existing neurons (incoming weights copied with 1% noise, outgoing
  weights halved between the two: the function is kept up to the noise) or as random
  new neurons (incoming weights like the layer's, outgoing weights zero);
* **connection pruning** -- deactivate the ``prune_ratio`` smallest-magnitude active
  connections into each layer; neurons left without inputs (their constant ReLU output
  is folded into the next biases) or without outputs are removed.

Schemes: **A** starts small (pruned to ``start_density``) and grows (growth > pruning);
**B** starts from the given, large network and shrinks (pruning > growth), connections
between any layers allowed; **C** is B restricted to adjacent layers (an MLP).
"""

from __future__ import annotations

import copy
import math

import attrs
import numpy as np
import torch
import torch.nn.functional as F

import nascore
from nascore.api import ConfigError
from nascore.api import in_range, one_of
from nascore.api import Compressed

from .layers import masked_layers
from .mlp import FeedForward
from .synthesis import (SelectionParams, device_of, finish, make_trainer, measure, prune_by_magnitude, prune_smallest,
                        train_batch)

SCHEDULES = {
    "A": ("grow-connections", "grow-neurons", "prune"),
    "B": ("prune", "grow-connections", "prune", "grow-neurons"),
    "C": ("prune", "grow-connections", "prune", "grow-neurons"),
}
DEFAULT_RATIOS = {"A": (0.3, 0.1), "B": (0.1, 0.3), "C": (0.1, 0.3)}  # (growth, pruning)


# --------------------------------------------------------------------------- operations


def _rms(t: torch.Tensor) -> float:
    return float(t.detach().square().mean().sqrt()) if t.numel() else 0.0


def connection_gradients(net: FeedForward, model, X, y, allow_skips: bool) -> dict:
    """``{(j, m): dL/dW_{j,m}}`` for every block that may hold a connection."""
    net.capture = True
    try:
        model.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(X), y)
        loss.backward()
        hs = [h.detach() for h in net.activations]
        deltas = [z.grad for z in net.preacts]
    finally:
        net.capture, net.activations, net.preacts = False, [], []
        model.zero_grad(set_to_none=True)
    grads = {}
    for j in range(1, len(net.layers) + 1):
        for m in (range(j) if allow_skips else [j - 1]):
            grads[(j, m)] = deltas[j - 1].T @ hs[m]
    return grads


@torch.no_grad()
def grow_connections(net: FeedForward, grads: dict, ratio: float) -> int:
    """Activate the ``ratio`` share (of active connections) of inactive ones with the
    largest gradient magnitude; returns how many were grown."""
    active = sum(int(b.weight_mask.sum()) for b in masked_layers(net))
    keys, scores = [], []
    for (j, m), g in grads.items():
        block = net.layers[j - 1] if m == j - 1 else net.skips[f"{j}_{m}"] if f"{j}_{m}" in net.skips else None
        inactive = torch.ones_like(g) if block is None else (block.weight_mask == 0).float()
        keys.append((j, m, g.shape))
        scores.append((g.abs() * inactive).flatten())
    flat = torch.cat(scores)
    n = min(int(math.ceil(ratio * active)), int((flat > 0).sum()))
    if n <= 0:
        return 0
    chosen = torch.topk(flat, n).indices
    start = 0
    for (j, m, shape), s in zip(keys, scores):
        sel = chosen[(chosen >= start) & (chosen < start + s.numel())] - start
        start += s.numel()
        if len(sel) == 0:
            continue
        block = net.layers[j - 1] if m == j - 1 else net.skip_block(j, m)
        g = grads[(j, m)].flatten()[sel]
        ref = net.layers[j - 1]
        scale = _rms(ref.weight[ref.weight_mask > 0]) / max(_rms(g), 1e-12)
        block.weight.view(-1)[sel] = -g * scale
        block.weight_mask.view(-1)[sel] = 1.0
    return n


@torch.no_grad()
def grow_neurons(net: FeedForward, ratio: float, mode: str, rng: np.random.Generator) -> int:
    """Add ``ceil(ratio * n_j)`` neurons to every hidden layer; returns how many."""
    total = 0
    for j in range(1, net.depth + 1):
        inc, out = net.layers[j - 1], net.layers[j]
        n_j = inc.out_features
        count = max(1, int(math.ceil(ratio * n_j)))
        if mode == "duplicate":
            src = torch.as_tensor(rng.choice(n_j, size=count, replace=count > n_j), device=inc.weight.device)
            noise = 0.01 * _rms(inc.weight[inc.weight_mask > 0]) * torch.randn(
                count, inc.in_features, generator=torch.Generator().manual_seed(int(rng.integers(2**31)))
            ).to(inc.weight)
            w_in, in_mask, bias = (inc.weight[src] + noise) * inc.weight_mask[src], inc.weight_mask[src], inc.bias[src]
            for u in src.tolist():  # split the outgoing weights between original and copies
                out.weight[:, u] /= 1 + int((src == u).sum())
            w_out, out_mask = out.weight[:, src].clone(), out.weight_mask[:, src].clone()
        else:
            density = float(inc.weight_mask.mean())
            std = _rms(inc.weight[inc.weight_mask > 0])
            in_mask = torch.as_tensor(rng.random((count, inc.in_features)) < max(density, 1e-3)).float().to(inc.weight)
            w_in = torch.as_tensor(rng.normal(0, std, (count, inc.in_features))).to(inc.weight) * in_mask
            bias = torch.zeros(count).to(inc.weight)
            w_out, out_mask = torch.zeros(out.out_features, count).to(inc.weight), None
        net.insert_neurons(j, w_in, bias, w_out, in_mask=in_mask, out_mask=out_mask)
        total += count
    return total


@torch.no_grad()
def prune_connections(net: FeedForward, ratio: float, large: float = 0.0) -> int:
    """Magnitude pruning of each layer's incoming connections -- the ``ratio`` share with
    the smallest magnitude and (section 3.1: "small *or large* weights") the ``large``
    share with the largest -- then dead-neuron removal."""
    pruned = 0
    for j in range(1, len(net.layers) + 1):
        blocks = [b for _, b in net.incoming(j)]
        if large > 0:
            pruned += prune_largest(blocks, large)
        pruned += prune_smallest(blocks, ratio)
    remove_dead_neurons(net)
    net.drop_empty_skips()
    return pruned


def prune_largest(blocks, ratio: float) -> int:
    """:func:`~.synthesis.prune_by_magnitude` of the largest-magnitude connections (section 3.1)."""
    return prune_by_magnitude(blocks, ratio, largest=True)


@torch.no_grad()
def remove_dead_neurons(net: FeedForward) -> int:
    """Remove hidden neurons with no active input (folding their constant output
    ``relu(bias)`` into the biases they feed) or no active output."""
    removed = 0
    for j in range(net.depth, 0, -1):
        has_in = sum(b.weight_mask.sum(dim=1) for _, b in net.incoming(j)) > 0
        has_out = sum(b.weight_mask.sum(dim=0) for _, b in net.outgoing(j)) > 0
        const = F.relu(net.layers[j - 1].bias) * (~has_in)
        for t, block in net.outgoing(j):
            net.layers[t - 1].bias += (block.weight * block.weight_mask) @ const
        keep = torch.nonzero(has_in & has_out).flatten()
        if len(keep) == 0:
            keep = torch.zeros(1, dtype=torch.long, device=keep.device)
        if len(keep) < len(has_in):
            removed += len(has_in) - len(keep)
            net.keep_neurons(j, keep)
    return removed


# --------------------------------------------------------------------------- compressor


@attrs.define(slots=False)
class SCANN(SelectionParams):
    """SCANN local search (Algorithm 3) on the classifier of any model with one."""

    conformance = {"space": {"name": "ffnn", "neurons_low": 8, "neurons_high": 32, "neurons_step": 8,
                             "max_layers": 2}, "task": {"dataset": "digits", "flatten": True},
                   "params": {"iterations": 2, "epochs": 1, "cv_folds": 0, "max_params_ratio": 1.0,
                              "max_flops_ratio": 1.0}}

    scheme: str = nascore.param("B", help="A: start small and grow; B: start large and prune; C: B as an MLP",
                                validator=one_of("A", "B", "C"))
    iterations: int = nascore.param(8, help="architecture-changing operations (each followed by training)",
                                    validator=in_range(0))
    epochs: int = nascore.param(1, help="training epochs after each operation", validator=in_range(1))
    lr: float | None = nascore.param(None, help="learning rate of that training (none: the run's)",
                                     validator=in_range(0.0, low_open=True))
    growth_ratio: float | None = nascore.param(None, help="connections grown per growth, share of active ones "
                                                          "(none: A 0.3, B/C 0.1)", validator=in_range(0.0, 1.0))
    prune_ratio: float | None = nascore.param(None, help="share of each layer's active connections pruned (none: A "
                                                         "0.1, B/C 0.3, or a schedule reaching max_params)",
                                              validator=in_range(0.0, 1.0))
    prune_large: float = nascore.param(0.0, help="share of each layer's active connections with the LARGEST "
                                                 "magnitude also pruned per prune step (section 3.1; 0: off)",
                                       validator=in_range(0.0, 1.0, high_open=True))
    neuron_ratio: float = nascore.param(0.1, help="neurons added per hidden layer per neuron growth, share",
                                        validator=in_range(0.0, 1.0))
    neuron_growth: str = nascore.param("duplicate", help="duplicate existing neurons or add random ones",
                                       validator=one_of("duplicate", "random"))
    start_density: float = nascore.param(0.2, help="Scheme A: share of connections the small start keeps",
                                         validator=in_range(0.0, 1.0, low_open=True))
    grad_samples: int = nascore.param(1024, help="training samples for the connection-growth gradient",
                                      validator=in_range(1))
    seed: int = nascore.param(0, help="seed of batches and neuron choices")

    def ratios(self) -> tuple[float, float]:
        growth, prune = DEFAULT_RATIOS[self.scheme]
        return (self.growth_ratio if self.growth_ratio is not None else growth,
                self.prune_ratio if self.prune_ratio is not None else prune)

    def scheduled_prune_ratio(self, model, net: FeedForward, limit: float, remaining: list[str]) -> float:
        """With ``max_params`` and no ``prune_ratio``: the share that brings the classifier
        to the limit (minus the other layers' parameters) in the ``remaining``
        operations' prune steps, allowing for what their growth steps add back; never
        below the scheme's default."""
        from nascore.api import count_params

        growth, default = self.ratios()
        active = sum(float(b.weight_mask.sum()) for b in masked_layers(net))
        target = limit - (count_params(model) - active)
        if target <= 0 or active <= target:
            return default
        grown = (1 + growth) ** remaining.count("grow-connections") * (1 + self.neuron_ratio) ** remaining.count(
            "grow-neurons")
        ratio = 1 - (target / (active * grown)) ** (1 / max(remaining.count("prune"), 1))
        return float(min(max(ratio, default), 0.95))

    def apply(self, op: str, model, net: FeedForward, task, rng, prune: float | None = None) -> int:
        """Apply one architecture-changing operation; returns how much it changed."""
        growth, default = self.ratios()
        if op == "prune":
            return prune_connections(net, default if prune is None else prune, self.prune_large)
        if op == "grow-neurons":
            return grow_neurons(net, self.neuron_ratio, self.neuron_growth, rng)
        X, y = train_batch(task, self.grad_samples, rng, device_of(model))
        model.train()
        return grow_connections(net, connection_gradients(net, model, X, y, self.scheme != "C"), growth)

    def compress(self, arch, model, task, ctx) -> Compressed:
        if not isinstance(getattr(model, "classifier", None), torch.nn.Module):  # SCANN rewires a Linear classifier
            raise ConfigError("scann needs a model with a 'classifier' (Linear layers); this model has none")
        original = model
        model = self._prepare(model)
        trainer = make_trainer(ctx, self.epochs, self.lr)
        seed = int(getattr(ctx, "seed", 0))
        before = measure(model, task, trainer, test=True)
        sel = self.selection(model, before)
        steps = self._chain(model, task, trainer, seed, sel.max_params,
                            lambda m, op: sel.offer(m, measure(m, task, trainer), op))
        scores = self.cross_validate(
            lambda m, sub, record: self._chain(self._prepare(m), sub, trainer, seed, sel.max_params,
                                               lambda mm, op: record(mm)),
            original, task, ctx, seed)
        if scores is not None:
            sel.rescore(scores)
        chosen_metrics, chosen, tuned = finish(sel.best(), task, trainer, self.final_epochs, seed + 10_000)
        after = measure(chosen, task, trainer, test=True)
        info = {"scheme": self.scheme, "operations": [{"op": o, "changed": c, "ratio": r} for o, c, r in steps],
                "history": sel.history, "chosen_step": chosen_metrics["step"], "final_training_kept": tuned,
                "cv_scores": scores, "param_limit": None if math.isinf(sel.max_params) else sel.max_params,
                "hidden_sizes": chosen.classifier.sizes[1:-1], "skip_blocks": list(chosen.classifier.skips)}
        return Compressed(arch=arch, model=chosen, before=before, after=after, info=info)

    @staticmethod
    def _prepare(model):
        """A copy of ``model`` whose classifier is a (masked) :class:`FeedForward`."""
        model = copy.deepcopy(model)
        model.classifier = FeedForward.from_module(model.classifier).to(device_of(model))
        return model

    def _chain(self, model, task, trainer, seed: int, limit: float, record) -> list:
        """The schedule on ``model`` (edited in place): each operation, training, then
        ``record(model, op)``.  Returns (op, changed, ratio) per step."""
        net = model.classifier
        rng = np.random.default_rng(self.seed)
        steps = []
        if self.scheme == "A":
            density = float(sum(b.weight_mask.sum() for b in masked_layers(net))
                            / sum(b.weight_mask.numel() for b in masked_layers(net)))
            start = max(0.0, 1 - self.start_density / max(density, 1e-9))
            steps.append(("start-small", prune_connections(net, start), start))
            trainer.fit(model, task, seed=seed)
            record(model, "start-small")
        schedule = SCHEDULES[self.scheme]
        ops = [schedule[i % len(schedule)] for i in range(self.iterations)]
        for i, op in enumerate(ops):
            ratio = None
            if op == "prune" and not math.isinf(limit) and self.prune_ratio is None:
                ratio = self.scheduled_prune_ratio(model, net, limit, ops[i:])
            steps.append((op, self.apply(op, model, net, task, rng, ratio), ratio))
            trainer.fit(model, task, seed=seed + i + 1)
            record(model, op)
        return steps
