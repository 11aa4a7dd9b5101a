"""Does MS-RANAS's architecture search move at small scale?  The digits example's search
(examples/msranas_digits.toml: 10 epochs, batch 128, a 3-scale 4-layer search network with
4 channels, cutout 4) with DARTS's architecture learning rate as given
(``alpha_lr_scale='none'``: 3e-4) and scaled to the number of architecture steps
(``'steps'``: 3e-4 x 19550 / steps), on the same seeds.

Per search: the architecture steps and learning rate, alpha's movement per epoch (max
``|softmax - 1/K|``, normalised edge entropy), the derived cell's stability (edges
unchanged per epoch-to-epoch transition, whether the last quarter of the search kept one
cell) and the supernet's last-exit validation accuracy.  Nothing is chosen here.  The
result file is rewritten after every search (``complete`` says whether all ran).

    python benchmarks/msranas_alpha_scale.py [--seeds 0 1 2] [--quick]
    python benchmarks/msranas_alpha_scale.py --batch-size 32 --rules steps --seeds 100 \
        --name msranas_alpha_scale_batch32            # a variant: 4x the steps at a quarter of the rate

Writes ``benchmarks/results/msranas_alpha_scale.json`` (``_quick``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nascore.data import load_task  # noqa: E402
from nascore.evidence import summarize  # noqa: E402
from nascore_msranas.experiments import search_cell  # noqa: E402

from _common import write_result  # noqa: E402

CHECK = {"bands": {"*dev*": 1e-6, "*entropy*": 1e-6, "*unchanged*": 1e-9, "*mean*": 1e-6, "*se*": 1e-6}}

FULL = {"task": {"dataset": "digits", "seed": 0},
        "search": {"epochs": 10, "batch_size": 128, "scales": 3, "layers": 4, "C": 4, "cutout": 4, "nodes": 2}}
QUICK = {"task": {"dataset": "digits", "seed": 0, "subset": 200},
         "search": {"epochs": 2, "batch_size": 32, "scales": 2, "layers": 3, "C": 2, "cutout": 0, "nodes": 2}}
RULES = ("none", "steps")


def summary(runs: list[dict]) -> dict:
    last = [r["alpha_movement"][-1] for r in runs]
    return {"max_abs_dev": summarize([m["max_abs_dev"] for m in last]),
            "entropy_min": summarize([m["entropy_min"] for m in last]),
            "changes_per_transition": summarize([r["cell_stability"]["changes"] / max(r["cell_stability"]["transitions"], 1)
                                                 for r in runs]),
            "last_quarter_stable": sum(bool(r["cell_stability"]["last_quarter_stable"]) for r in runs),
            "n": len(runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--batch-size", type=int, default=None, help="search batch size (more, smaller steps)")
    parser.add_argument("--epochs", type=int, default=None, help="search epochs")
    parser.add_argument("--rules", nargs="+", default=list(RULES), choices=list(RULES))
    parser.add_argument("--name", default="msranas_alpha_scale", help="result file name (a variant's own file)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    spec = QUICK if args.quick else FULL
    spec = {**spec, "search": {**spec["search"], **({"batch_size": args.batch_size} if args.batch_size else {}),
                               **({"epochs": args.epochs} if args.epochs else {})}}
    seeds = [0] if args.quick else args.seeds
    task = load_task(spec["task"])
    runs = {rule: [] for rule in args.rules}
    for seed in seeds:
        for rule in args.rules:
            found = search_cell(task, seed=seed, alpha_lr_scale=rule, **spec["search"])
            runs[rule].append({"seed": seed, **{k: found[k] for k in (
                "key", "alpha_lr", "arch_steps", "alpha_movement", "cell_stability", "seconds")}})
            st = found["cell_stability"]
            print(f"seed {seed} {rule}: lr {found['alpha_lr']:.4g} x {found['arch_steps']} steps, max|softmax-1/K| "
                  f"{found['alpha_movement'][-1]['max_abs_dev']:.4f}, changes {st['changes']}/{st['transitions']}, "
                  f"last quarter stable {st['last_quarter_stable']}", flush=True)
        done = {rule: summary(r) for rule, r in runs.items()}
        write_result(args.name, {"complete": all(len(r) == len(seeds) for r in runs.values()), "summary": done,
                                 "runs": runs}, quick=args.quick, settings={**spec, "rules": args.rules},
                     seeds=seeds,
                     tuned_on="nothing tuned: the rule follows the step count of DARTS's CIFAR search")


if __name__ == "__main__":
    main()
