"""TNAS-OS and TNAS-G on real training (TNAS paper, Sections 4.2-4.3), digits and MNIST.

For each space (``nb201`` and ``darts``, sized for 8x8 / 28x28 single-channel images) and
each seed, the search runs through ``nascore.run`` with the ``train`` evaluator; its
result is the found architecture retrained from scratch (``final_candidates = 1``,
budget 1).  The reference is random search with the same evaluator: the mean (and the
max) of ``random`` architectures trained the same way.  Also reported: search wall time,
the supernet's cost per epoch relative to one stand-alone epoch of the found network, and
the VAE's state at the end.

    python benchmarks/tnas_oneshot.py [--quick] [--mnist] [--seeds 3]

Writes ``benchmarks/results/tnas_oneshot.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "tnas_oneshot.json"
from _common import checkpoint, load_checkpoint, save_checkpoint, write_result  # noqa: E402

SPACES = {"nb201": {"name": "nb201", "C": 8, "N": 1},
          "darts": {"name": "darts", "C": 4, "layers": 3, "nodes": 3}}
TASKS = {"digits": {"dataset": "digits", "seed": 0},
         "mnist": {"dataset": "mnist", "seed": 0, "subset": 6000, "eval_subset": 2000}}
EVALUATOR = {"name": "train", "epochs": 10, "batch_size": 64, "lr": 0.05, "measure_latency": False}
VAE = {"vae_layers": 1, "vae_steps": 30, "top_fraction": 0.2}
#: bench_check: the supernet-to-child epoch cost is a timing ratio
CHECK = {"ignore": ["*to_child_epoch*"]}


def optimizers(epochs: int) -> dict:
    common = {"epochs": epochs, "batch_size": 64, "archs_per_round": 10, "round_steps": 10, **VAE}
    return {"tnas-oneshot": {"name": "tnas-oneshot", "eps_inc": 0.1, "population": 20, "generations": 5,
                             "top_k": 5, **common},
            "tnas-gradient": {"name": "tnas-gradient", "vae_candidates": 20, **common}}


def run(task: dict, space: dict, optimizer: dict, seed: int, budget: int, evaluator: dict) -> dict:
    import nascore

    cfg = {"name": "tnas-oneshot-bench", "seed": seed, "budget": budget, "device": "cpu", "task": task,
           "space": space, "optimizer": optimizer, "evaluator": evaluator}
    t = time.perf_counter()
    res = nascore.run(cfg, write_files=False)
    res["wall"] = time.perf_counter() - t
    return res


def search_row(res: dict) -> dict:
    info = dict(res["info"])
    m = res["best"]["metrics"]
    keep = ("rounds", "epsilon", "supernet_seconds", "supernet_epoch_seconds", "child_epoch_seconds",
            "supernet_to_child_epoch", "train_seconds", "search_seconds", "vae", "argmax_supernet_accuracy")
    return {"valid_accuracy": m["valid_accuracy"], "test_accuracy": m["test_accuracy"], "params": m.get("params"),
            "tokens": res["best"]["tokens"], "wall_seconds": res["wall"], **{k: info[k] for k in keep if k in info}}


def main(argv=None) -> int:
    import torch

    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="digits, nb201, 1 seed, short training")
    ap.add_argument("--mnist", action="store_true", help="also run MNIST (a 6,000-image training subset)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--random", type=int, default=8, help="random architectures per (task, space)")
    ap.add_argument("--supernet-epochs", type=int, default=30)
    ap.add_argument("--spaces", nargs="*", default=list(SPACES), choices=list(SPACES))
    ap.add_argument("--tasks", nargs="*", choices=list(TASKS), help="override the task list")
    args = ap.parse_args(argv)
    tasks = args.tasks or (["digits"] + (["mnist"] if args.mnist and not args.quick else []))
    spaces = ["nb201"] if args.quick else args.spaces
    seeds = 1 if args.quick else args.seeds
    n_random = 2 if args.quick else args.random
    evaluator = dict(EVALUATOR, epochs=3) if args.quick else EVALUATOR
    epochs = 3 if args.quick else args.supernet_epochs
    settings = {"tasks": tasks, "spaces": spaces, "seeds": seeds, "random": n_random, "evaluator": evaluator,
                "supernet_epochs": epochs}
    # finished (task, space) rows resume from a checkpoint keyed by commit and settings
    ckpt = None if args.quick else checkpoint("tnas_oneshot", settings)
    data = load_checkpoint(ckpt, {})
    results = data.setdefault("results", {})
    for task_name in tasks:
        for space_name in spaces:
            key = f"{task_name}/{space_name}"
            if key in results:
                continue
            row = {}
            task, space = TASKS[task_name], SPACES[space_name]
            row["protocol"] = {"task": task, "space": space, "evaluator": evaluator, "supernet_epochs": epochs,
                               "seeds": seeds, "random_architectures": n_random, "vae": VAE,
                               "optimizers": optimizers(epochs)}
            rnd = run(task, space, {"name": "random-search", "batch_size": 1}, 0, n_random, evaluator)
            evals = [e for e in rnd["evaluations"] if e["status"] == "ok"]
            row["random"] = {"n": len(evals), "mean_valid": float(np.mean([e["metrics"]["valid_accuracy"] for e in evals])),
                             "mean_test": float(np.mean([e["metrics"]["test_accuracy"] for e in evals])),
                             "max_valid": float(max(e["metrics"]["valid_accuracy"] for e in evals)),
                             "seconds_per_architecture": rnd["wall"] / max(len(evals), 1)}
            print(f"{key} random: mean test {row['random']['mean_test']:.2f}", flush=True)
            for name, opt in optimizers(epochs).items():
                runs = [search_row(run(task, space, opt, seed, 1, evaluator)) for seed in range(seeds)]
                row[name] = {"runs": runs, "mean_valid": float(np.mean([r["valid_accuracy"] for r in runs])),
                             "mean_test": float(np.mean([r["test_accuracy"] for r in runs])),
                             "mean_wall_seconds": float(np.mean([r["wall_seconds"] for r in runs])),
                             "mean_supernet_to_child_epoch": float(np.mean(
                                 [r["supernet_to_child_epoch"] for r in runs if r.get("supernet_to_child_epoch")]))}
                print(f"{key} {name}: mean test {row[name]['mean_test']:.2f} "
                      f"(random {row['random']['mean_test']:.2f}), wall {row[name]['mean_wall_seconds']:.0f}s, "
                      f"supernet/child epoch {row[name]['mean_supernet_to_child_epoch']:.2f}", flush=True)
            results[key] = row
            save_checkpoint(ckpt, data)
    write_result("tnas_oneshot", data, quick=args.quick, settings=settings, seeds=list(range(seeds)),
                 tuned_on="VAE settings of tnas_vae.py / the tnas plugin defaults; nothing tuned here")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
