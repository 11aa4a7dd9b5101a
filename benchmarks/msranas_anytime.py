"""MS-RANAS anytime prediction (the analog of the paper's Figs. 6 and 9): accuracy vs
cumulative MFLOPs per exit of one final network (three scales, seven layers, an exit on
each of the six cell layers, 2-node cells) built from three cells:

* ``searched``: the cell MS-RANAS finds with its best search setting (three scales,
  exits and cutout during search; Section 4.1);
* ``sep_conv``: a hand-picked cell, every edge ``sep_conv_3x3``;
* ``random``: a cell drawn uniformly from the darts space.

Targets: the paper reports the first exit within 1.25 points of the last with 12% of
the MFLOPs (CIFAR-10); the issue's target on MNIST is within 1.5 points with <= 15%.

CPU scale: MNIST uses a 2,500-image train subset (2,000 valid and test images), the
search runs on that subset average-pooled to 14x14 (a proxy, as DARTS searches on
CIFAR for ImageNet) and the final networks train at 28x28.  The searched cell is
searched afresh by every invocation (a killed one resumes from a checkpoint keyed by the
code commit and the settings, never from an earlier result file); one invocation writes
the whole file:

    python benchmarks/msranas_anytime.py --dataset mnist --networks searched
    python benchmarks/msranas_anytime.py --dataset digits
    python benchmarks/msranas_anytime.py --quick

Writes ``benchmarks/results/msranas_anytime.json`` (and a PNG next to it).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import nascore
from nascore.data import load_task
from nascore_msranas.anytime import anytime_area
from nascore_msranas.experiments import downsample, final_space, search_cell, train_final
from nascore_msranas.plots import plot_anytime

RESULTS = Path(__file__).resolve().parent / "results" / "msranas_anytime.json"
from _common import checkpoint, load_checkpoint, result_path, save_checkpoint, write_result  # noqa: E402
TARGET = {"gap_points": 1.5, "first_flops_share": 0.15}

DATASETS = {
    "mnist": {"task": {"dataset": "mnist", "seed": 0, "subset": 2500, "eval_subset": 2000}, "search_pool": 2,
              "search": {"epochs": 6, "cutout": 7}, "final": {"epochs": 10, "batch_size": 128, "lr": 0.1}},
    "digits": {"task": {"dataset": "digits", "seed": 0}, "search_pool": 1,
               "search": {"epochs": 10, "cutout": 4}, "final": {"epochs": 20, "batch_size": 128, "lr": 0.1}},
}
QUICK = {"digits": {"task": {"dataset": "digits", "seed": 0, "subset": 200}, "search_pool": 1,
                    "search": {"epochs": 1, "cutout": 4}, "final": {"epochs": 1, "batch_size": 64, "lr": 0.05}}}
NETWORK = {"scales": 3, "layers": 7, "C": 8, "nodes": 2, "exits": True}


def sep_conv_genome(space) -> dict:
    """Every edge sep_conv_3x3; node j reads nodes j-2 and j-1."""
    edges = [("sep_conv_3x3", j - 2, j) for j in space.node_ids()] + \
            [("sep_conv_3x3", j - 1, j) for j in space.node_ids()]
    cell = sorted(edges, key=lambda e: (e[2], e[1]))
    return space.from_genotype({"normal": cell, "reduce": cell}).genome


def cells(dataset: str, spec: dict, task, seed: int, data: dict) -> dict:
    """The three cells' genomes (the searched one is searched once per invocation and kept in
    ``data``, i.e. in the checkpoint keyed by commit and settings)."""
    space = nascore.create("search_space", "darts", nodes=NETWORK["nodes"])
    found = data.setdefault("search", {}).get(dataset)
    if found is None:
        proxy = downsample(task, spec["search_pool"]) if spec["search_pool"] > 1 else task
        found = search_cell(proxy, seed=seed, nodes=NETWORK["nodes"], scales=3, layers=4, C=4, exits=True,
                            **spec["search"])
        found["input_shape"] = list(proxy.input_shape)
        data["search"][dataset] = found
    return {"searched": found["genome"], "sep_conv": sep_conv_genome(space),
            "random": space.sample(np.random.default_rng(seed)).genome}


def compare(results: dict) -> dict:
    """Area under each network's accuracy-MFLOPs curve on one common budget range (the
    costliest network's last exit), so that networks of different cost compare."""
    top = max(r["table"][-1]["flops"] for r in results.values())
    return {"max_flops": top, "area": {name: anytime_area([x["accuracy"] for x in r["table"]],
                                                          [x["flops"] for x in r["table"]], top)
                                       for name, r in results.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", nargs="+", default=["mnist", "digits"], choices=list(DATASETS))
    parser.add_argument("--networks", nargs="+", default=["searched", "sep_conv", "random"],
                        choices=["searched", "sep_conv", "random"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="digits subset, one epoch each")
    parser.add_argument("--compare-only", action="store_true", help="train nothing; redo the comparison and plot")
    parser.add_argument("--out", type=Path, default=None, help="result file (default results/msranas_anytime[_quick].json)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    specs = QUICK if args.quick else {d: DATASETS[d] for d in args.dataset}
    out = args.out or result_path("msranas_anytime", args.quick)
    settings = {"datasets": specs, "networks": args.networks, "network": NETWORK, "seed": args.seed}
    # the searched cell and trained networks resume from a checkpoint keyed by commit and settings
    ckpt = None if args.quick else checkpoint("msranas_anytime", settings)
    data = load_checkpoint(ckpt, {})
    data.update(network=NETWORK, target=TARGET)
    for dataset, spec in specs.items():
        results = data.setdefault("results", {}).setdefault(dataset, {})
        networks = [] if args.compare_only else args.networks
        if networks:
            task = load_task(spec["task"])
            genomes = cells(dataset, spec, task, args.seed, data)
        for name in networks:
            t0 = time.time()
            space = final_space(**NETWORK)
            res = train_final(space, genomes[name], task, seed=args.seed, latency_repeats=5, **spec["final"])
            s = res["summary"]
            results[name] = {"genotype": space.to_genotype(space.make(genomes[name])), "table": res["anytime"],
                             "summary": s, "metrics": res["metrics"],
                             "meets_target": s["gap_points"] <= TARGET["gap_points"]
                             and s["first_flops_share"] <= TARGET["first_flops_share"]}
            print(f"{dataset}/{name}: {time.time() - t0:.0f} s, exits " +
                  " ".join(f"{r['accuracy']:.2f}@{r['flops'] / 1e6:.2f}M" for r in res["anytime"]), flush=True)
            save_checkpoint(ckpt, data)
        if not results:
            continue
        data.setdefault("comparison", {})[dataset] = compare(results)
        save_checkpoint(ckpt, data)
        plot_anytime({k: v["table"] for k, v in results.items()}, out.with_name(f"{out.stem}_{dataset}.png"),
                     title=f"MS-RANAS anytime prediction ({dataset}, test split)")
    write_result("msranas_anytime", data, quick=args.quick, settings=settings, seeds=[args.seed],
                 tuned_on="MS-RANAS search setting from msranas_ablation.json (best search setting); "
                          "plugin defaults otherwise", path=out)


if __name__ == "__main__":
    main()
