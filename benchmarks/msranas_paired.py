"""MS-RANAS searched cells against random cells of the same layout, paired by seed.

For every search seed ``s`` the MS-RANAS search (DARTS first order on the multi-scale,
multi-exit supernet, ``alpha_lr_scale="steps"``) runs afresh and derives a cell; ``k``
random cells are drawn uniformly from the same ``darts`` space with a generator seeded by
``s``.  Every cell is trained in the same final network (three scales, an exit on each
cell layer) with each training seed ``r`` (weights seeded by ``r`` via
``nascore.api.build_seeded``, the same batches), and measured on the test split:

* ``area``: Eq. 4 with a uniform budget on ``[0, F]``, the area under the per-exit test
  accuracy-MFLOPs step curve, ``F`` the costliest trained network's last exit (one common
  range for all cells, so that cheaper cells are not favoured by their own range);
* ``last``: the last exit's test accuracy.

The paired unit is the search seed: searched = the mean over training seeds, random = the
mean over the ``k`` cells and the training seeds (the comparison ``searched`` vs
``random``, n = number of search seeds).  A second comparison pairs by (search seed,
training seed), n = seeds x training seeds, whose units share a search and are not
independent: it is reported, not used for a verdict.  Nothing is chosen on test.

Nothing is reused from an earlier invocation except through the checkpoint, which is keyed
by the code commit, the dirty files and the settings (``_common.checkpoint``)::

    python benchmarks/msranas_paired.py                       # MNIST 14x14 (1,000 train), 5 search seeds of 50 epochs
    python benchmarks/msranas_paired.py --search-seeds 0 1 2  # fewer searches
    python benchmarks/msranas_paired.py --partial             # write what the checkpoint has
    python benchmarks/msranas_paired.py --quick               # digits subset, seconds
    python benchmarks/msranas_paired.py --name msranas_paired_e50   # write to another result file

Writes ``benchmarks/results/msranas_paired.json`` (``_quick``; ``--name``) in the study shape.
The searches run the optimizer's default schedule (50 epochs, the paper's; the result
written at commit ``dca9526`` came from 6-epoch searches).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nascore  # noqa: E402
from nascore.data import load_task  # noqa: E402
from nascore.evidence import paired, summarize, verdict  # noqa: E402
from nascore_msranas.anytime import anytime_area  # noqa: E402
from nascore_msranas.experiments import downsample, final_space, search_cell, train_final  # noqa: E402

from _common import checkpoint, load_checkpoint, save_checkpoint, write_result  # noqa: E402

#: bench_check: trained networks on a shared CPU are deterministic for a seed, but allow
#: float noise of a different BLAS path
CHECK = {"bands": {"*accuracy*": 1e-6, "*area*": 1e-6, "*diff*": 1e-6, "*mean*": 1e-6, "*se*": 1e-6,
                   "*.z": 1e-4, "*p_value*": 1e-6, "*alpha*": 1e-6, "*entropy*": 1e-6, "*dev*": 1e-6}}

FULL = {
    "task": {"dataset": "mnist", "seed": 0, "subset": 1000, "eval_subset": 500}, "pool": 2,
    # the optimizer's defaults for the search schedule: 50 epochs (the paper's), no warm-up,
    # alpha_lr_scale="steps" (400 architecture steps at 3e-4 x 19550 / 400)
    "search": {"epochs": 50, "batch_size": 64, "scales": 3, "layers": 4, "C": 4, "cutout": 0},
    "network": {"scales": 3, "layers": 4, "C": 4, "nodes": 2, "exits": True},
    "final": {"epochs": 4, "batch_size": 64, "lr": 0.05},
    "random_cells": 5, "search_seeds": [0, 1, 2, 3, 4], "train_seeds": [0, 1, 2],
}
QUICK = {
    "task": {"dataset": "digits", "seed": 0, "subset": 160}, "pool": 1,
    "search": {"epochs": 2, "batch_size": 32, "scales": 2, "layers": 3, "C": 2, "cutout": 0},
    "network": {"scales": 2, "layers": 3, "C": 2, "nodes": 2, "exits": True},
    "final": {"epochs": 1, "batch_size": 64, "lr": 0.05},
    "random_cells": 2, "search_seeds": [0, 1], "train_seeds": [0],
}


def run_units(spec: dict, data: dict, ckpt) -> None:
    """Search and train every unit not yet in ``data`` (checkpointed after each)."""
    task = load_task(spec["task"])
    task = downsample(task, spec["pool"]) if spec["pool"] > 1 else task
    net = spec["network"]
    space = final_space(**net)
    darts = nascore.create("search_space", "darts", nodes=net["nodes"])
    searches, trained = data.setdefault("searches", {}), data.setdefault("trained", {})
    cells = {}
    for s in spec["search_seeds"]:
        if str(s) not in searches:
            found = search_cell(task, seed=s, nodes=net["nodes"], **spec["search"])
            searches[str(s)] = found
            save_checkpoint(ckpt, data)
            st = found["cell_stability"]
            print(f"search {s}: {found['seconds']:.0f} s, alpha lr {found['alpha_lr']:.4g} over "
                  f"{found['arch_steps']} steps, max|softmax-1/K| {found['alpha_movement'][-1]['max_abs_dev']:.3f}, "
                  f"changes {st['changes']}/{st['transitions']}, last quarter stable {st['last_quarter_stable']}",
                  flush=True)
        rng = np.random.default_rng(1000 + s)
        cells[s] = {"searched": searches[str(s)]["genome"]}
        cells[s].update({f"random{j}": darts.sample(rng).genome for j in range(spec["random_cells"])})
    # training seed by training seed, so that a run cut short has whole seeds for every cell
    for r in spec["train_seeds"]:
        for s in spec["search_seeds"]:
            for name, genome in cells[s].items():
                key = f"{s}/{name}/{r}"
                if key in trained:
                    continue
                t0 = time.perf_counter()
                res = train_final(space, genome, task, seed=r, latency_repeats=0, **spec["final"])
                trained[key] = {"genome": genome, "table": [{k: row[k] for k in ("accuracy", "flops")}
                                                            for row in res["anytime"]],
                                "valid_accuracy": res["metrics"]["valid_accuracy"],
                                "seconds": time.perf_counter() - t0}
                save_checkpoint(ckpt, data)
                print(f"{key}: last {res['anytime'][-1]['accuracy']:.2f}, {time.perf_counter() - t0:.0f} s",
                      flush=True)


def analyse(spec: dict, data: dict) -> dict:
    """Per-arm values and the paired comparisons from the trained units (complete search
    seeds only)."""
    trained = data.get("trained", {})
    names = ["searched"] + [f"random{j}" for j in range(spec["random_cells"])]
    # the training seeds every cell of every search seed has (a run cut short has a prefix)
    train_seeds = [r for r in spec["train_seeds"]
                   if all(f"{s}/{n}/{r}" in trained for n in names for s in spec["search_seeds"])]
    seeds = list(spec["search_seeds"]) if train_seeds else []
    if not seeds:
        return {"complete_search_seeds": [], "complete_train_seeds": [], "arms": {}, "comparisons": [], "per_cell": {}}
    spec = {**spec, "train_seeds": train_seeds}
    top = max(t["table"][-1]["flops"] for t in trained.values())

    def metric(u, which):
        accs = [row["accuracy"] for row in u["table"]]
        return anytime_area(accs, [row["flops"] for row in u["table"]], top) if which == "area" else accs[-1]

    arms, comps, per_unit = {}, [], {}
    for which in ("area", "last"):
        by_seed = {"searched": [], "random": []}
        by_run = {"searched": [], "random": []}
        for s in seeds:
            srch = [metric(trained[f"{s}/searched/{r}"], which) for r in spec["train_seeds"]]
            rand = [[metric(trained[f"{s}/{n}/{r}"], which) for n in names[1:]] for r in spec["train_seeds"]]
            by_seed["searched"].append(float(np.mean(srch)))
            by_seed["random"].append(float(np.mean(rand)))
            by_run["searched"].extend(srch)
            by_run["random"].extend(float(np.mean(x)) for x in rand)
            per_unit.setdefault(str(s), {})[which] = {"searched": srch, "random": rand}
        for arm, values in by_seed.items():
            arms[f"{arm}_{which}"] = summarize(values)
        c = {"arm": f"searched_{which}", "against": f"random_{which}", "metric": which,
             "unit": "search seed (means over training seeds and random cells)",
             **paired(by_seed["searched"], by_seed["random"])}
        c["verdict"] = verdict(c, min_n=5)
        comps.append(c)
        comps.append({"arm": f"searched_{which}", "against": f"random_{which}", "metric": which,
                      "unit": "(search seed, training seed): not independent, not used for a verdict",
                      **paired(by_run["searched"], by_run["random"])})
    # what the area charges: each cell's cumulative MFLOPs at every exit (the same for every
    # training seed) and its per-exit test accuracy, mean over the training seeds
    per_cell = {str(s): {n: {"exit_mflops": [row["flops"] / 1e6 for row in trained[f"{s}/{n}/{train_seeds[0]}"]["table"]],
                             "exit_accuracy": np.mean([[row["accuracy"] for row in trained[f"{s}/{n}/{r}"]["table"]]
                                                       for r in train_seeds], axis=0).tolist()}
                         for n in names}
                for s in seeds}
    return {"complete_search_seeds": seeds, "complete_train_seeds": train_seeds, "max_flops": top, "arms": arms, "comparisons": comps,
            "per_search_seed": per_unit, "per_cell": per_cell}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="digits subset, tiny networks (seconds)")
    parser.add_argument("--search-seeds", type=int, nargs="+", default=None)
    parser.add_argument("--partial", action="store_true",
                        help="train nothing; write the result from the checkpoint's finished units")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="checkpoint file (default: keyed by this commit, the dirty files and the settings)")
    parser.add_argument("--name", default="msranas_paired",
                        help="result file name (a cut-short run can be written beside the committed file)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    spec = dict(QUICK if args.quick else FULL)
    if args.search_seeds:
        spec["search_seeds"] = args.search_seeds
    ckpt = None if args.quick else (args.checkpoint or checkpoint("msranas_paired", spec))
    data = load_checkpoint(ckpt, {})
    if not args.partial:
        run_units(spec, data, ckpt)
    result = analyse(spec, data)
    searches = data.get("searches", {})
    result["searches"] = {s: {k: v[k] for k in ("key", "genotype", "seconds", "alpha_lr", "arch_steps",
                                                "alpha_movement", "cell_stability")}
                          for s, v in searches.items()}
    result["complete"] = (result["complete_search_seeds"] == spec["search_seeds"]
                          and result["complete_train_seeds"] == spec["train_seeds"])
    result["units_trained"] = len(data.get("trained", {}))
    result["checkpoint"] = None if ckpt is None else ckpt.name  # its name starts with the commit that ran
    for c in result["comparisons"]:
        print(f"{c['arm']} vs {c['against']} [{c['unit'][:11]}]: n={c['n']} diff {c['diff_mean']} "
              f"se {c['diff_se']} z {c['z']}")
    write_result(args.name, result, quick=args.quick, settings=spec,
                 seeds={"search": spec["search_seeds"], "train": spec["train_seeds"],
                        "random_cells": "numpy default_rng(1000 + search seed)"},
                 tuned_on="nothing tuned: DARTS defaults, alpha_lr_scale='steps' (rule chosen from the step "
                          "count, not from results)")


if __name__ == "__main__":
    main()
