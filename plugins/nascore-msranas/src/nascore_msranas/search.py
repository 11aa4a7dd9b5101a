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

Scale (``alpha_lr_scale``): DARTS's architecture learning rate 3e-4 is tuned for about
19.5k Adam steps (50 epochs of 391 architecture batches of 64 on half of CIFAR-10).
Adam moves a parameter by at most about its learning rate per step, so in a search of
S << 19.5k steps alpha cannot leave its start (50 steps: at most ~0.015, softmax within
0.2% of uniform) and the derived cell is noise.  ``alpha_lr_scale="steps"`` multiplies
the learning rate by ``max(1, reference_arch_steps / S)``: every search gets the same
lr x steps budget as DARTS on CIFAR, and a search of >= 19.5k steps runs at DARTS's own
rate.  The update rule (Adam, first/second order) is the paper's; only its step size
follows the number of steps.  Every epoch records how far alpha has moved
(:func:`alpha_movement`) and the run records how stable the derived cell was
(:func:`cell_stability`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import attrs
import torch

from nascore.api import ConfigError, Trainer, WeightSharingTrainer

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
    alpha_lr_scale: str = "steps"
    reference_arch_steps: int = 19550
    warmup_epochs: int = 0

    def __attrs_post_init__(self):
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ConfigError(f"warmup_epochs must be in [0, epochs - 1] = [0, {self.epochs - 1}], "
                              f"got {self.warmup_epochs}")
        if self.alpha_lr_scale not in ("steps", "none"):
            raise ConfigError(f"alpha_lr_scale must be 'steps' or 'none', got {self.alpha_lr_scale!r}")
        if self.reference_arch_steps < 1:
            raise ConfigError(f"reference_arch_steps must be >= 1, got {self.reference_arch_steps}")


#: DARTS on CIFAR-10: 50 epochs x ceil(25,000 / 64) architecture steps
DARTS_ARCH_STEPS = 50 * 391


def scaled_alpha_lr(alpha_lr: float, arch_steps: int, rule: str = "steps",
                    reference_steps: int = DARTS_ARCH_STEPS) -> float:
    """The architecture learning rate of a search of ``arch_steps`` Adam steps:
    ``alpha_lr`` (rule ``none``) or ``alpha_lr * max(1, reference_steps / arch_steps)``
    (rule ``steps``: the lr x steps budget of DARTS's search, never scaled down)."""
    if rule == "none":
        return alpha_lr
    if rule != "steps":
        raise ConfigError(f"alpha_lr_scale must be 'steps' or 'none', got {rule!r}")
    return alpha_lr * max(1.0, reference_steps / max(int(arch_steps), 1))


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Architecture steps of one search epoch over ``n`` sample pairs: the core trainer's
    epoch batching (``drop_single``: a trailing batch of one sample is left out)."""
    sizes = [min(lo + batch_size, n) - lo for lo in range(0, n, batch_size)]
    return sum(1 for size in sizes if size > 1 or n == 1)


def alpha_movement(weights: dict) -> dict:
    """How far ``softmax(alpha)`` is from its uniform start: the largest
    ``|softmax - 1/K|`` over all edges and ops, and the per-edge entropy divided by
    ``log K`` (1: uniform, 0: one-hot) as its mean and minimum over edges."""
    mats = [(w.detach() if isinstance(w, torch.Tensor) else torch.as_tensor(w)).to(torch.float64)
            for w in weights.values()]
    rows = torch.cat([m.reshape(-1, m.shape[-1]) for m in mats])
    k = rows.shape[1]
    entropy = -(rows * rows.clamp_min(1e-300).log()).sum(1) / math.log(k)
    return {"max_abs_dev": float((rows - 1.0 / k).abs().max()), "entropy_mean": float(entropy.mean()),
            "entropy_min": float(entropy.min())}


def _edge_set(space, genome) -> set:
    arch = space.make(genome)
    return {(cell,) + tuple(e) for cell in ("normal", "reduce") for e in space.cell_edges(arch, cell)}


def cell_regret(space, genome: dict, weights: dict) -> float:
    """How far ``genome``'s cell is from the one DARTS derives from ``weights`` (per cell,
    an edges x ops matrix of softmax weights over the space's non-``none`` ops): per
    node, the derivation keeps the two edges of largest strength (their best op's
    weight), i.e. the pair of (edge, op) choices of largest summed weight; the regret is
    the largest, over nodes, of that best sum minus the sum of the genome's own two
    (edge, op) weights.  0 when the genome is the derived cell (or tied with it); a
    small regret means the genome differs only by ops or edges that are neck and neck."""
    import numpy as np

    arch = space.make(genome)
    index = {e: n for n, e in enumerate(space.supernet_edges())}
    ops = list(space.op_names)
    worst = 0.0
    for cell in ("normal", "reduce"):
        w = np.asarray(torch.as_tensor(weights[cell]).detach().cpu(), dtype=float)
        chosen = {}
        for op, src, dst in space.cell_edges(arch, cell):
            chosen.setdefault(dst, []).append(w[index[(src, dst)], ops.index(op)])
        for j in space.node_ids():
            rows = [index[(i, j)] for i in range(j)]
            best = np.sort(w[rows].max(axis=1))[::-1][:2].sum()
            worst = max(worst, float(best - sum(chosen.get(j, []))))
    return worst


#: default tolerance of the tolerant stability: a flip between choices whose softmax
#: weights differ by less than 0.01 (1/12.5 of the uniform weight 1/8) is not a change
STABILITY_TOL = 0.01


def cell_stability(space, genomes: Sequence[dict], weights: Sequence[dict] | None = None,
                   tol: float = STABILITY_TOL) -> dict:
    """Stability of the derived cell over the epochs of a search.

    Strict: ``unchanged``: per epoch-to-epoch transition, the fraction of the edges
    ``(cell, op, input, node)`` of epoch t that epoch t-1 had too; ``changes``: the
    transitions in which the cell changed at all; ``last_quarter``: over the last
    ``ceil(E / 4)`` epochs (at least two), the fraction of the final cell's edges present
    in every one of them, and ``last_quarter_stable`` whether the cell did not change there.

    Tolerant (with ``weights``, the softmax weights of every epoch in :func:`cell_regret`'s
    form): ``regret``: per transition, the regret of epoch t-1's cell under epoch t's
    weights; ``changes_tol``: transitions with regret > ``tol`` (a flip between ops or
    edges within ``tol`` of each other is not counted); ``last_quarter_changes_tol``: such
    transitions within the last quarter (0: every flip there was between near-ties);
    ``last_quarter_stable_tol``, stricter (it also catches a slow drift): the final cell's
    regret is <= ``tol`` under the weights of every last-quarter epoch."""
    sets = [_edge_set(space, g) for g in genomes]
    unchanged = [len(b & a) / max(len(b), 1) for a, b in zip(sets, sets[1:])]
    q = max(2, math.ceil(len(sets) / 4)) if len(sets) > 1 else len(sets)
    tail = sets[-q:] if sets else []
    common = set.intersection(*tail) if tail else set()
    last = sets[-1] if sets else set()
    out = {"unchanged": unchanged, "changes": sum(u < 1.0 for u in unchanged),
           "transitions": len(unchanged), "last_quarter_epochs": len(tail),
           "last_quarter": len(common & last) / max(len(last), 1) if tail else None,
           "last_quarter_stable": bool(tail) and all(s == last for s in tail)}
    if weights is not None:
        if len(weights) != len(genomes):
            raise ConfigError(f"cell_stability: {len(genomes)} genomes but {len(weights)} weight sets")
        regret = [cell_regret(space, g, w) for g, w in zip(genomes, weights[1:])]
        tail_regret = [cell_regret(space, genomes[-1], w) for w in weights[-q:]] if tail else []
        out.update({"tol": tol, "regret": regret, "changes_tol": sum(r > tol for r in regret),
                    "last_quarter_changes_tol": sum(r > tol for r in regret[len(regret) - (len(tail) - 1):])
                    if len(tail) > 1 else 0,
                    "last_quarter_regret": max(tail_regret) if tail_regret else None,
                    "last_quarter_stable_tol": bool(tail) and all(r <= tol for r in tail_regret)})
    return out


@attrs.define
class SearchRecord:
    """The outcome of a search: one record per epoch and the derived genomes."""

    epochs: list = attrs.field(factory=list)
    genomes: list = attrs.field(factory=list)
    seconds: float = 0.0
    weights: dict = attrs.field(factory=dict)
    exit_accuracies: list = attrs.field(factory=list)
    alpha_lr: float = 0.0
    arch_steps: int = 0
    stability: dict = attrs.field(factory=dict)
    derive_weights: list = attrs.field(factory=list)


def split_halves(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded partition of ``range(n)`` into the weights half and the architecture half."""
    perm = torch.randperm(n, generator=generator)
    return perm[: n // 2], perm[n // 2:]


def derive_weights(space, supernet: MultiScaleSupernet) -> dict:
    """Per cell, ``softmax(alpha)`` (over every op, ``none`` included) restricted to the
    columns of the space's ops: the weights DARTS derives the cell from."""
    weights = supernet.softmax_weights()
    cols = [supernet.op_names.index(op) for op in space.op_names]
    return {k: w.detach()[:, cols] for k, w in weights.items()}


def derive(space, supernet: MultiScaleSupernet):
    """The discrete architecture of ``space`` from the supernet's ``softmax(alpha)`` (the
    softmax includes ``none``, whose column is then dropped, as DARTS derives)."""
    return space.from_weights(derive_weights(space, supernet))


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
        self.arch_steps = (settings.epochs - settings.warmup_epochs) * steps_per_epoch(min(len(half_w), len(half_a)), settings.batch_size)
        self.alpha_lr = scaled_alpha_lr(settings.alpha_lr, self.arch_steps, settings.alpha_lr_scale,
                                        settings.reference_arch_steps)
        self.a_opt = torch.optim.Adam(self.alphas, lr=self.alpha_lr, betas=(0.5, 0.999),
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
        """One search epoch; during the first ``warmup_epochs`` only the weights train
        (on the weight half), the DARTS-family warm-up before alpha moves."""
        warm = epoch < self.settings.warmup_epochs
        row = self.trainer.train_epoch(epoch, arch_step=None if warm else self.arch_step)
        arch_mean = (float("nan") if warm else
                     float(torch.stack([torch.as_tensor(v) for v in row["arch"]]).mean()))
        return {"epoch": epoch + 1, "lr": row["lr"], "train_loss": row["loss"],
                "arch_loss": None if math.isnan(arch_mean) else arch_mean}

    def run(self, log: Callable[[str], None] | None = None, advance: Callable | None = None) -> SearchRecord:
        record = SearchRecord()
        start = time.perf_counter()
        for epoch in range(self.settings.epochs):
            t0 = time.perf_counter()
            row = self.epoch(epoch)
            row["seconds"] = time.perf_counter() - t0
            weights = derive_weights(self.space, self.net)
            arch = self.space.from_weights(weights)
            row["genome_key"] = arch.key
            row["alpha"] = alpha_movement(self.net.softmax_weights())
            record.epochs.append(row)
            record.genomes.append(arch.genome)
            record.derive_weights.append({k: w.cpu().tolist() for k, w in weights.items()})
            if log is not None:
                log(f"msranas search epoch {epoch + 1}/{self.settings.epochs}: train loss {row['train_loss']:.3f}, "
                    f"{row['seconds']:.1f} s, max |softmax(alpha) - 1/K| {row['alpha']['max_abs_dev']:.3f}, "
                    f"cell {arch.key}")
            if advance is not None:
                advance()
        record.seconds = time.perf_counter() - start
        record.weights = {k: w.detach().cpu().tolist() for k, w in self.net.softmax_weights().items()}
        record.alpha_lr, record.arch_steps = self.alpha_lr, self.arch_steps
        record.stability = cell_stability(self.space, record.genomes, record.derive_weights)
        return record

    def valid_accuracies(self) -> list[float]:
        """Per-exit accuracy (percent) of the supernet on the task's validation split."""
        return self.criterion.exit_accuracies(self.net, self.valid)
