"""Building blocks of the MS-RANAS experiments (ablation, anytime curves, search cost)
that the benchmark scripts share: one search, one final training, one anytime table,
each seeded and timed, on any image task."""

from __future__ import annotations

import time

import torch

import nascore
from nascore.api import Split, Task

from .anytime import anytime_table, exit_probabilities, summarize
from .network import MultiScaleSupernet, make_layout
from .search import Searcher, SearchSettings


def downsample(task: Task, factor: int) -> Task:
    """The task with images average-pooled by ``factor`` (MNIST 28x28 -> 14x14), a
    cheaper proxy for CPU-bound benchmarks."""
    import torch.nn.functional as F

    def pool(split: Split) -> Split:
        return Split(F.avg_pool2d(split.X, factor, ceil_mode=True), split.y)

    train, valid, test = pool(task.train), pool(task.valid), pool(task.test)
    return Task(f"{task.name}{tuple(train.X.shape[2:])[0]}", task.kind, tuple(train.X.shape[1:]), task.num_classes,
                train, valid, test, {**task.meta, "downsampled": factor})


def search_cell(task: Task, *, seed: int, nodes: int = 2, scales: int = 3, layers: int = 4, C: int = 4,
                exits: bool = True, cutout: int = 0, epochs: int = 10, batch_size: int = 128,
                order: str = "first", alpha_lr_scale: str = "steps", warmup_epochs: int = 0) -> dict:
    """One MS-RANAS search; returns the derived darts genome, its key, the per-epoch
    records, alpha's movement, the derived cell's stability (strict and tolerant), the
    last epoch's derivation weights and the wall time."""
    space = nascore.create("search_space", "darts", nodes=nodes)
    layout = make_layout(task.input_shape, scales=scales, layers=layers, C=C, exits=exits)
    ops = ("none",) + space.op_names
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = MultiScaleSupernet(ops, task.input_shape, task.num_classes, layout, nodes=nodes)
        settings = SearchSettings(epochs=epochs, batch_size=batch_size, order=order, cutout=cutout,
                                  alpha_lr_scale=alpha_lr_scale, warmup_epochs=warmup_epochs)
        record = Searcher(net, space, task, settings, seed=seed).run()
    arch = space.make(record.genomes[-1])
    return {"genome": arch.genome, "key": arch.key, "genotype": space.to_genotype(arch),
            "seconds": record.seconds, "epoch_seconds": [e["seconds"] for e in record.epochs],
            "alpha_lr": record.alpha_lr, "arch_steps": record.arch_steps,
            "alpha_movement": [e["alpha"] for e in record.epochs], "cell_stability": record.stability,
            "derive_weights": record.derive_weights[-1]}


def final_space(*, nodes: int = 2, scales: int = 3, layers: int = 7, C: int = 8, exits: bool = True):
    return nascore.create("search_space", "msranas", nodes=nodes, scales=scales, layers=layers, C=C, exits=exits)


def train_final(space, genome: dict, task: Task, *, seed: int, epochs: int, batch_size: int = 64,
                lr: float = 0.05, cutout: int = 0, latency_repeats: int = 0) -> dict:
    """Train ``space.build(genome)`` with the core ``train`` evaluator and return its
    metrics with the per-exit anytime table on the test split."""
    evaluator = nascore.create("evaluator", "train", epochs=epochs, batch_size=batch_size, lr=lr, cutout=cutout,
                               device="cpu", measure_latency=False)
    arch = space.make(genome)
    t0 = time.perf_counter()
    outcome = evaluator.evaluate(arch, space, task, seed=seed)
    seconds = time.perf_counter() - t0
    model = space.build(arch, task)
    model.load_state_dict(outcome.state_dict)
    model.eval()
    rows = anytime_table(model, task.test, task.input_shape, latency_repeats=latency_repeats)
    probs = exit_probabilities(model, task.test.X)
    summary = summarize(rows, probs.numpy(), task.test.y.numpy())
    return {"metrics": outcome.metrics, "anytime": rows, "summary": summary, "seconds": seconds,
            "epoch_seconds": outcome.metrics["train_seconds"] / max(outcome.metrics["epochs"], 1)}
