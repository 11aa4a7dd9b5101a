"""Does MS-RANAS's architecture search move at small scale, and is the derived cell
stable?  The digits example's search network (a 3-scale 4-layer search network with 4
channels, cutout 4, batch 128) under named variants, on the same seeds:

* ``none``: 10 epochs, DARTS's architecture learning rate as given (3e-4);
* ``steps``: 10 epochs, the rate scaled to the number of architecture steps
  (``alpha_lr_scale='steps'``: 3e-4 x 19550 / steps);
* ``steps_e50``: the same rule over DARTS's (and the paper's) 50 search epochs;
* ``steps_e50_w15``: 50 epochs of which the first 15 train the weights only (the warm-up
  of the DARTS family, e.g. PC-DARTS), the rule scaled to the 35 epochs' steps.

Per search: the architecture steps and learning rate, alpha's movement per epoch (max
``|softmax - 1/K|``, normalised edge entropy) and the derived cell's stability, strict
(edges unchanged per transition, whether the last quarter of the search kept one cell)
and tolerant (``regret``: how far the previous epoch's cell is from the derived one under
the current alphas; a flip between choices within ``tol`` = 0.01 of softmax weight is not
a change).  The result file is rewritten after every search (``complete`` says whether
all ran).  Variants were compared on seeds 10-12 (``--name msranas_alpha_scale_tune``)
before the reported seeds 0-2 ran.

    python benchmarks/msranas_alpha_scale.py [--seeds 0 1 2] [--variants none steps ...] [--quick]

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
#: variant -> overrides of the search settings (alpha_lr_scale, epochs, warmup_epochs)
VARIANTS = {"none": {"alpha_lr_scale": "none"}, "steps": {"alpha_lr_scale": "steps"},
            "steps_e50": {"alpha_lr_scale": "steps", "epochs": 50},
            "steps_e50_w15": {"alpha_lr_scale": "steps", "epochs": 50, "warmup_epochs": 15}}
QUICK_VARIANTS = ("none", "steps")


def last_quarter_changes_tol(stability: dict) -> int:
    """Last-quarter transitions whose regret exceeds the tolerance (from ``regret``)."""
    q = stability["last_quarter_epochs"]
    return sum(r > stability["tol"] for r in stability["regret"][len(stability["regret"]) - (q - 1):]) if q > 1 else 0


def summary(runs: list[dict]) -> dict:
    last = [r["alpha_movement"][-1] for r in runs]
    return {"max_abs_dev": summarize([m["max_abs_dev"] for m in last]),
            "entropy_min": summarize([m["entropy_min"] for m in last]),
            "changes_per_transition": summarize([r["cell_stability"]["changes"] / max(r["cell_stability"]["transitions"], 1)
                                                 for r in runs]),
            "changes_tol_per_transition": summarize([r["cell_stability"]["changes_tol"]
                                                     / max(r["cell_stability"]["transitions"], 1) for r in runs]),
            "last_quarter_regret": summarize([r["cell_stability"]["last_quarter_regret"] for r in runs]),
            "last_quarter_stable": sum(bool(r["cell_stability"]["last_quarter_stable"]) for r in runs),
            "last_quarter_stable_tol": sum(bool(r["cell_stability"]["last_quarter_stable_tol"]) for r in runs),
            "last_quarter_flips_within_tol": sum(last_quarter_changes_tol(r["cell_stability"]) == 0 for r in runs),
            "n": len(runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--variants", nargs="+", default=None, choices=list(VARIANTS))
    parser.add_argument("--tuned-on", default=None, help="what the choice among variants was tuned on")
    parser.add_argument("--name", default="msranas_alpha_scale", help="result file name (a variant's own file)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    spec = QUICK if args.quick else FULL
    variants = args.variants or list(QUICK_VARIANTS if args.quick else VARIANTS)
    seeds = [0] if args.quick else args.seeds
    task = load_task(spec["task"])
    runs = {v: [] for v in variants}
    for seed in seeds:
        for v in variants:
            found = search_cell(task, seed=seed, **{**spec["search"], **VARIANTS[v]})
            runs[v].append({"seed": seed, **{k: found[k] for k in (
                "key", "alpha_lr", "arch_steps", "alpha_movement", "cell_stability", "derive_weights", "seconds")}})
            st = found["cell_stability"]
            print(f"seed {seed} {v}: lr {found['alpha_lr']:.4g} x {found['arch_steps']} steps, max|softmax-1/K| "
                  f"{found['alpha_movement'][-1]['max_abs_dev']:.4f}, changes {st['changes']}/{st['transitions']} "
                  f"(tol {st['changes_tol']}), last quarter stable {st['last_quarter_stable']} "
                  f"(tol {st['last_quarter_stable_tol']}, regret {st['last_quarter_regret']:.3f}), "
                  f"{found['seconds']:.0f} s", flush=True)
        done = {v: summary(r) for v, r in runs.items()}
        write_result(args.name, {"complete": all(len(r) == len(seeds) for r in runs.values()), "summary": done,
                                 "variants": {v: VARIANTS[v] for v in variants}, "runs": runs},
                     quick=args.quick, settings={**spec, "variants": {v: VARIANTS[v] for v in variants}},
                     seeds=seeds, tuned_on=args.tuned_on or "nothing tuned here")


if __name__ == "__main__":
    main()
