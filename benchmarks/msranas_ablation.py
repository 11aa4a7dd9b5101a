"""MS-RANAS search ablation (the analog of the paper's Figs. 4 and 5) on digits and MNIST.

Search variants (each switches one thing on over a single-exit, single-scale baseline,
Section 4.1): ``baseline``; ``cutout`` (cutout during search); ``exits`` (early exits
during search); ``scales3`` (three scales during search).  Every searched cell is then
trained in two final networks: ``single`` (one scale, one exit: Fig. 4) and ``multi``
(three scales, an exit on every cell layer: Fig. 5).  Final training has no cutout, so
only the search differs.  Test accuracy of the last exit (and, for ``multi``, of the
first exit and the anytime area) is averaged over seeds.

CPU scale (2 shared cores): 2-node cells, a 4-layer search network with 4 channels, a
5-layer final network with 4 channels; MNIST is a 1,000-image train subset average-pooled
to 14x14 (``mnist14``).  Results accumulate in the JSON, so the runs can be split:

    python benchmarks/msranas_ablation.py --dataset digits --seeds 0 1 2
    python benchmarks/msranas_ablation.py --dataset mnist14 --seeds 0
    python benchmarks/msranas_ablation.py --quick

Writes ``benchmarks/results/msranas_ablation.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from nascore.data import load_task
from nascore_msranas.experiments import downsample, final_space, search_cell, train_final

RESULTS = Path(__file__).resolve().parent / "results" / "msranas_ablation.json"
from _common import checkpoint, load_checkpoint, save_checkpoint, write_result  # noqa: E402 - sibling module

VARIANTS = {
    "baseline": {"scales": 1, "exits": False, "cutout": False},
    "cutout": {"scales": 1, "exits": False, "cutout": True},
    "exits": {"scales": 1, "exits": True, "cutout": False},
    "scales3": {"scales": 3, "exits": False, "cutout": False},
}
FINALS = {"single": {"scales": 1, "exits": False}, "multi": {"scales": 3, "exits": True}}
DATASETS = {
    "digits": {"task": {"dataset": "digits", "seed": 0}, "pool": 1, "cutout": 4,
               "search_epochs": 6, "final_epochs": 10},
    "mnist14": {"task": {"dataset": "mnist", "seed": 0, "subset": 1000, "eval_subset": 1000}, "pool": 2,
                "cutout": 7, "search_epochs": 4, "final_epochs": 8},
}
QUICK = {"digits": {"task": {"dataset": "digits", "seed": 0, "subset": 200}, "pool": 1, "cutout": 4,
                    "search_epochs": 1, "final_epochs": 1}}


def load(spec: dict):
    task = load_task(spec["task"])
    return downsample(task, spec["pool"]) if spec["pool"] > 1 else task


def run_unit(task, spec: dict, variant: str, seed: int) -> dict:
    """One search and its two final trainings."""
    v = VARIANTS[variant]
    cell = search_cell(task, seed=seed, scales=v["scales"], exits=v["exits"], layers=4, C=4,
                       cutout=spec["cutout"] if v["cutout"] else 0, epochs=spec["search_epochs"])
    out = {"search": cell, "final": {}}
    for name, f in FINALS.items():
        space = final_space(scales=f["scales"], exits=f["exits"], layers=5, C=4)
        res = train_final(space, cell["genome"], task, seed=seed, epochs=spec["final_epochs"])
        out["final"][name] = {"test_accuracy": res["metrics"]["test_accuracy"],
                              "valid_accuracy": res["metrics"]["valid_accuracy"],
                              "exit_accuracies": [r["accuracy"] for r in res["anytime"]],
                              "exit_mflops": [r["flops"] / 1e6 for r in res["anytime"]],
                              "area": res["summary"]["area"], "params": res["metrics"]["params"],
                              "seconds": res["seconds"]}
    return out


def _stats(values):
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "n": len(values), "values": values}


def summarize(runs: dict) -> dict:
    """Mean and std over seeds per dataset, variant and final network."""
    table: dict = {}
    for key, unit in runs.items():
        dataset, variant, _ = key.split("/")
        for name, f in unit["final"].items():
            row = table.setdefault(dataset, {}).setdefault(variant, {}).setdefault(name, {"last": [], "first": [],
                                                                                          "area": []})
            row["last"].append(f["test_accuracy"])
            row["first"].append(f["exit_accuracies"][0])
            row["area"].append(f["area"])
    return {d: {v: {n: {k: _stats(vals) for k, vals in r.items()} for n, r in fin.items()}
                for v, fin in var.items()} for d, var in table.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--quick", action="store_true", help="one seed, two variants, one epoch, 200 digits")
    parser.add_argument("--out", type=Path, default=None, help="result file (default results/msranas_ablation[_quick].json)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    specs = QUICK if args.quick else {d: DATASETS[d] for d in args.dataset}
    seeds = [0] if args.quick else args.seeds
    variants = ["baseline", "scales3"] if args.quick else args.variants
    settings = {"datasets": specs, "variants": variants, "all_variants": VARIANTS, "finals": FINALS,
                "search_network": {"layers": 4, "C": 4, "nodes": 2}, "final_network": {"layers": 5, "C": 4, "nodes": 2}}
    # finished units resume from a checkpoint keyed by commit and settings (none in quick mode)
    ckpt = None if args.quick else checkpoint("msranas_ablation", {**settings, "seeds": seeds})
    data = load_checkpoint(ckpt, {"runs": {}})
    for dataset, spec in specs.items():
        task = load(spec)
        for seed in seeds:
            for variant in variants:
                key = f"{dataset}/{variant}/{seed}"
                if key in data["runs"]:
                    continue
                t0 = time.time()
                data["runs"][key] = run_unit(task, spec, variant, seed)
                print(f"{key}: {time.time() - t0:.0f} s " + json.dumps(
                    {n: round(f["test_accuracy"], 2) for n, f in data["runs"][key]["final"].items()}), flush=True)
                save_checkpoint(ckpt, data)
    data["summary"] = summarize(data["runs"])
    write_result("msranas_ablation", data, quick=args.quick, settings=settings, seeds=seeds,
                 tuned_on="MS-RANAS plugin defaults (see docs/plugins/msranas.md); nothing tuned here",
                 path=args.out)
    print(json.dumps({d: {v: {n: round(r["last"]["mean"], 2) for n, r in fin.items()} for v, fin in var.items()}
                      for d, var in data.get("summary", {}).items()}, indent=1))


if __name__ == "__main__":
    main()
