"""MS-RANAS search cost: one search epoch against one epoch of the derived network on
the same data, and the wall time of a whole search.

A search epoch (DARTS first order) passes once over the train split: half the batches
update the weights, the other half the architecture, each with a forward and backward
pass through the supernet (every op of every edge).  It is compared with one training
epoch over the same train split of (a) the derived cells in a network of the search
network's size and (b) the final network (three scales, seven layers).  Epochs are
interleaved (search, derived, final, search, ...), so that the machine's load hits both
alike, and every search epoch is paired with the derived epochs measured right after it:
the ratio is reported per pair, as its mean with the standard error over ``pairs``
pairs (and the median).  Every epoch is timed twice: wall clock and the process's CPU
time (one torch thread, so the CPU time leaves out the time other processes on a shared
machine take); the ratio and its verdict are drawn from the CPU time, the wall-clock
ratio is reported beside it.  Target (issue): search epoch <= 4x a same-size derived
epoch; the verdict is "meets" when mean + 2 se <= 4, "misses" when mean - 2 se > 4, else
"within noise".  Validation is excluded from the derived epochs.

Where the search epoch's time goes (``profile``): the share of its CPU time in the
architecture steps (forward + backward to alpha; the rest is the weight steps: forward +
backward + SGD), and the convolutions per forward pass of the supernet and of the derived
network (every supernet edge runs all seven ops, a derived edge one), which set the
ratio's floor: the search epoch passes half the data forward and backward through the
supernet for the weights and the other half forward and back to alpha, the derived epoch
all of it forward and backward through the derived network.

    python benchmarks/msranas_search_cost.py [--quick] [--pairs 12]

Writes ``benchmarks/results/msranas_search_cost.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

import nascore
from nascore.data import Split, Task, load_task
from nascore_msranas.experiments import downsample, final_space
from nascore_msranas.network import MultiScaleSupernet, make_layout
from nascore_msranas.search import Searcher, SearchSettings, derive

RESULTS = Path(__file__).resolve().parent / "results" / "msranas_search_cost.json"
from _common import write_result  # noqa: E402 - sibling module
TARGET = 4.0
#: bench_check: the per-epoch timings and the verdict drawn from them depend on the machine
CHECK = {"ignore": ["*.epochs*", "*verdict*", "*share*"]}
SEARCH = {"scales": 3, "layers": 4, "C": 4, "nodes": 2, "exits": True}
FINAL = {"scales": 3, "layers": 7, "C": 8, "nodes": 2, "exits": True}
DATASETS = {
    "digits": {"task": {"dataset": "digits", "seed": 0}, "pool": 1, "pairs": 12},
    "mnist14": {"task": {"dataset": "mnist", "seed": 0, "subset": 1000, "eval_subset": 500}, "pool": 2,
                "pairs": 8},
}
QUICK = {"digits": {"task": {"dataset": "digits", "seed": 0, "subset": 200}, "pool": 1, "pairs": 2}}


def without_validation(task: Task) -> Task:
    """The task with a two-sample validation split, so that a fit's time is training."""
    tiny = Split(task.valid.X[:2], task.valid.y[:2])
    return Task(task.name, task.kind, task.input_shape, task.num_classes, task.train, tiny, task.test, task.meta)


def train_epoch_seconds(space, genome, task, batch_size: int) -> tuple[float, float]:
    """Wall and CPU seconds of one training epoch of ``space.build(genome)``."""
    trainer = nascore.create("evaluator", "train", epochs=1, batch_size=batch_size, device="cpu")
    model = space.build(space.make(genome), task)
    t0, c0 = time.perf_counter(), time.process_time()
    trainer.fit(model, task, seed=0)
    return time.perf_counter() - t0, time.process_time() - c0


def conv_count(model, x) -> int:
    """Convolutions one forward pass of ``model`` on ``x`` runs (counted by hooks)."""
    n = [0]
    hooks = [m.register_forward_hook(lambda *_: n.__setitem__(0, n[0] + 1))
             for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for h in hooks:
            h.remove()
        model.train()
    return n[0]


def verdict(summary: dict, target: float = TARGET) -> str:
    mean, se = summary["mean"], summary["se"]
    if se is None:
        return "one pair: no verdict"
    if mean + 2 * se <= target:
        return "meets"
    if mean - 2 * se > target:
        return "misses"
    return "within noise"


def measure(spec: dict) -> dict:
    from nascore.evidence import summarize

    task = load_task(spec["task"])
    task = downsample(task, spec["pool"]) if spec["pool"] > 1 else task
    darts = nascore.create("search_space", "darts", nodes=SEARCH["nodes"])
    layout = make_layout(task.input_shape, scales=SEARCH["scales"], layers=SEARCH["layers"], C=SEARCH["C"],
                         exits=SEARCH["exits"])
    torch.manual_seed(0)
    net = MultiScaleSupernet(("none",) + darts.op_names, task.input_shape, task.num_classes, layout,
                             nodes=SEARCH["nodes"])
    pairs = spec["pairs"]
    searcher = Searcher(net, darts, task, SearchSettings(epochs=pairs, batch_size=128), seed=0)
    same = final_space(**SEARCH)
    final = final_space(**FINAL)
    fast = without_validation(task)
    arch_cpu = [0.0]
    arch_step = searcher.arch_step

    def timed_arch_step(step):
        c0 = time.process_time()
        try:
            return arch_step(step)
        finally:
            arch_cpu[0] += time.process_time() - c0

    searcher.arch_step = timed_arch_step
    rows = []
    for epoch in range(pairs):
        arch_cpu[0] = 0.0
        t0, c0 = time.perf_counter(), time.process_time()
        searcher.epoch(epoch)
        search, search_cpu = time.perf_counter() - t0, time.process_time() - c0
        genome = derive(darts, net).genome
        (same_w, same_c), (final_w, final_c) = (train_epoch_seconds(same, genome, fast, 128),
                                                train_epoch_seconds(final, genome, fast, 128))
        rows.append({"search": search, "derived_same_size": same_w, "derived_final": final_w,
                     "search_cpu": search_cpu, "arch_steps_cpu": arch_cpu[0], "derived_same_size_cpu": same_c,
                     "derived_final_cpu": final_c,
                     "derived_convs": conv_count(same.build(same.make(genome), task), task.train.X[:2])})
    ratios = {k: [r["search_cpu"] / r[f"{k}_cpu"] for r in rows] for k in ("derived_same_size", "derived_final")}
    ratio = {k: {**summarize(v), "median": statistics.median(v)} for k, v in ratios.items()}
    wall = [r["search"] / r["derived_same_size"] for r in rows]
    x = task.train.X[:2]
    convs = {"supernet": conv_count(net, x), "derived_same_size": conv_count(same.build(same.make(genome), task), x)}
    return {"train_samples": len(task.train), "input_shape": list(task.input_shape), "epochs": rows,
            "search_epoch_seconds": summarize([r["search"] for r in rows]),
            "search_epoch_cpu_seconds": summarize([r["search_cpu"] for r in rows]),
            "ratio": ratio, "ratio_wall": {**summarize(wall), "median": statistics.median(wall)},
            "verdict": verdict(ratio["derived_same_size"]),
            "profile": {"arch_step_share": summarize([r["arch_steps_cpu"] / r["search_cpu"] for r in rows]),
                        "convs_per_forward": convs,
                        "conv_ratio": convs["supernet"] / max(convs["derived_same_size"], 1)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--pairs", type=int, default=None, help="search/derived epoch pairs per dataset")
    parser.add_argument("--out", type=Path, default=None, help="result file (default results/msranas_search_cost[_quick].json)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    specs = QUICK if args.quick else {d: DATASETS[d] for d in args.dataset}
    if args.pairs:
        specs = {d: {**v, "pairs": args.pairs} for d, v in specs.items()}
    data = {"target": TARGET, "search_network": SEARCH, "final_network": FINAL, "results": {}}
    for name, spec in specs.items():
        data["results"][name] = res = measure(spec)
        print(name, json.dumps(res["ratio"]), res["verdict"], flush=True)
    write_result("msranas_search_cost", data, quick=args.quick, settings=specs, seeds=[0],
                 tuned_on=None, path=args.out)


if __name__ == "__main__":
    main()
