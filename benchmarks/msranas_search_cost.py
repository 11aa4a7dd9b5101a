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
pairs (and the median).  Target (issue): search epoch <= 4x a same-size derived epoch;
the verdict is "meets" when mean + 2 se <= 4, "misses" when mean - 2 se > 4, else
"within noise".  Validation is excluded from the derived epochs.

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
CHECK = {"ignore": ["*.epochs*", "*verdict*"]}
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


def train_epoch_seconds(space, genome, task, batch_size: int) -> float:
    trainer = nascore.create("evaluator", "train", epochs=1, batch_size=batch_size, device="cpu")
    model = space.build(space.make(genome), task)
    t0 = time.perf_counter()
    trainer.fit(model, task, seed=0)
    return time.perf_counter() - t0


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
    rows = []
    for epoch in range(pairs):
        t0 = time.perf_counter()
        searcher.epoch(epoch)
        search = time.perf_counter() - t0
        genome = derive(darts, net).genome
        rows.append({"search": search, "derived_same_size": train_epoch_seconds(same, genome, fast, 128),
                     "derived_final": train_epoch_seconds(final, genome, fast, 128)})
    ratios = {k: [r["search"] / r[k] for r in rows] for k in ("derived_same_size", "derived_final")}
    ratio = {k: {**summarize(v), "median": statistics.median(v)} for k, v in ratios.items()}
    return {"train_samples": len(task.train), "input_shape": list(task.input_shape), "epochs": rows,
            "search_epoch_seconds": summarize([r["search"] for r in rows]),
            "ratio": ratio, "verdict": verdict(ratio["derived_same_size"])}


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
