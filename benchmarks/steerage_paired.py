"""STEERAGE GS and GS+LS against the baseline MLP, paired over split seeds (Tables 3-5 analogue).

For each dataset and split seed (the train/valid/test split and every run seed), three
arms on the same split, scored on its test split (never used for a choice):

* **baseline**: the paper's baseline MLP -- hidden layers 2d and d for the d-feature
  scikit-learn sets (section 5.1.1), LeNet-300-100 for MNIST read as 784 features
  (Table 5) -- no DR, full precision, trained as many epochs as the GS+LS network's
  weights get in all (GS evaluation + SCANN steps + fine-tuning);
* **GS**: global search -- Sobol pool, Algorithm 1 (random batch, then the
  top-predicted candidates), boosted-tree predictor, EES (Algorithm 2), then the top-k
  predicted architectures trained and the run's answer chosen among everything
  evaluated -- the base architecture (the baseline's layers, snapped to the space's
  neuron grid, PCA at ratio 1, 32 bits) is in the pool.  Every choice uses the robust
  score ``cv_accuracy`` (k-fold cross-validation on train + valid; k = 3 here to fit the
  shared CPU, the plugin's default is 5) on the small sets;
  MNIST's 1,000-row validation split is scored directly (k extra trainings of a 784-input
  network per candidate do not fit this machine);
* **GS+LS**: the GS network after SCANN Scheme B (no size cap, every step
  cross-validated on the small sets, final fine-tuning);
* **GS+LS (half)**: the same GS network (its stored weights) through the same SCANN asked
  for at most half the baseline's parameters -- the target's size -- whose pruning is
  scheduled to use that whole budget.

Paired comparisons (``nascore.evidence.paired``) of test accuracy and params per dataset:
GS+LS and GS against the baseline, GS+LS against GS.  Targets (issue 18): GS+LS at least
as accurate as the baseline (paired mean difference >= 0) with <= 0.5x its parameters on
>= 3 of the 4 datasets, better with z >= 2 on >= 1.

    nice .venv/bin/python benchmarks/steerage_paired.py [--quick] [--datasets wine digits] [--seeds 0 1 2 3 4]

Writes ``benchmarks/results/steerage_paired.json`` (``_quick`` with ``--quick``; ``--name``
gives another file name, e.g. for a run of one dataset beside the main file); a killed
full run resumes its finished (dataset, seed) units from a checkpoint keyed by commit and
settings.  ``--combine A.json B.json`` writes the study from the units of full files run
separately (each dataset from one file, same seeds), keeping every part's provenance (the
parts live in ``benchmarks/results/steerage_paired_parts/``, out of the rendered results):

    python benchmarks/steerage_paired.py --combine benchmarks/results/steerage_paired_parts/small.json \
        benchmarks/results/steerage_paired_parts/mnist784.json
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

DATASETS = ("wine", "breast_cancer", "digits", "mnist784")
FULL = dict(epochs=6, per_iteration=6, iterations=2, population=50, ees_iterations=100, top_k=3, folds=3,
            scann_iterations=4, scann_epochs=2, final_epochs=3, mnist_subset=2000, mnist_eval=1000, mnist_epochs=4,
            mnist_per_iteration=6, mnist_iterations=2, mnist_scann_iterations=4)
QUICK = dict(epochs=3, per_iteration=4, iterations=1, population=10, ees_iterations=10, top_k=2, folds=2,
             scann_iterations=2, scann_epochs=1, final_epochs=1, mnist_subset=300, mnist_eval=200, mnist_epochs=1,
             mnist_per_iteration=2, mnist_iterations=1, mnist_scann_iterations=1)

CHECK = {"ignore": ["*seconds*", "machine*"], "atol": 1e-6, "rtol": 1e-6, "bands": {}}


def train_settings(epochs: int) -> dict:
    """Adam, lr 0.01, weight decay 1e-3 (section 5.1.1), on the CPU."""
    return {"epochs": epochs, "batch_size": 64, "optimizer": "adam", "lr": 0.01, "weight_decay": 0.001,
            "device": "cpu"}


def task_table(name: str, seed: int, a) -> dict:
    if name == "mnist784":
        return {"dataset": "mnist", "flatten": True, "seed": seed, "subset": a.mnist_subset,
                "eval_subset": a.mnist_eval, "valid_fraction": 0.1}
    return {"dataset": name, "seed": seed, **({"flatten": True} if name == "digits" else {})}


def baseline_hidden(name: str, d: int) -> list[int]:
    return [300, 100] if name == "mnist784" else [2 * d, d]


def space_table(name: str, d: int) -> dict:
    """Table 2's space; for the small sets the neurons are refined to d/2 .. 4d in 8
    steps (the paper: "the final search space for each dataset is a subset")."""
    if name == "mnist784":
        return {"name": "ffnn", "features": d, "max_layers": 3, "neurons_low": 50, "neurons_high": 600,
                "neurons_step": 25, "fit_samples": 1000}
    step = max(1, round(3.5 * d / 8))
    low = max(2, round(d / 2))
    return {"name": "ffnn", "features": d, "neurons_low": low, "neurons_high": low + 8 * step, "neurons_step": step}


def base_genome(space: dict, hidden: list[int]) -> dict:
    """The baseline's layers on the space's neuron grid (nearest value), no DR (PCA at
    ratio 1 keeps every feature), full precision."""
    lo, hi, step = space["neurons_low"], space["neurons_high"], space["neurons_step"]
    snap = [min(hi, max(lo, lo + step * round((h - lo) / step))) for h in hidden]
    snap += [lo] * (space.get("max_layers", 6) - len(snap))  # inactive layers (canonicalized away)
    return {"layers": len(hidden), **{f"n{i + 1}": n for i, n in enumerate(snap)}, "dr_method": "pca",
            "dr_ratio": 1.0, "quant_bits": 32}


def baseline(name: str, task, epochs: int, seed: int) -> dict:
    import torch
    from torch import nn

    from nascore.training import Trainer
    from nascore_steerage.layers import model_cost
    from nascore_steerage.mlp import FeedForward
    from nascore_steerage.networks import SteerageNet

    d = task.input_shape[0]
    hidden = baseline_hidden(name, d)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SteerageNet(nn.Identity(), nn.Identity(), FeedForward([d, *hidden, task.num_classes]))
    trainer = Trainer(**train_settings(epochs))
    trainer.fit(model, task, seed=seed)
    return {"hidden": hidden, "valid_accuracy": trainer.accuracy(model, task.valid),
            "test_accuracy": trainer.accuracy(model, task.test), **model_cost(model, task.input_shape)}


def baseline_epochs(name: str, a) -> int:
    """The epochs the GS+LS network's weights are trained in all (GS evaluation, one
    training per SCANN step, final fine-tuning): the baseline gets as many, so LS's extra
    training is no advantage."""
    mnist = name == "mnist784"
    gs, steps = (a.mnist_epochs, a.mnist_scann_iterations) if mnist else (a.epochs, a.scann_iterations)
    return gs + steps * a.scann_epochs + a.final_epochs


def pipeline_config(name: str, d: int, seed: int, a) -> dict:
    mnist = name == "mnist784"
    per_it, its = (a.mnist_per_iteration, a.mnist_iterations) if mnist else (a.per_iteration, a.iterations)
    epochs = a.mnist_epochs if mnist else a.epochs
    space = space_table(name, d)
    folds = 0 if mnist else a.folds
    return {
        "name": f"steerage-paired-{name}", "seed": seed, "budget": per_it * (its + 1) + 1 + a.top_k,
        "device": "cpu", "metric": "cv_accuracy",
        "task": task_table(name, seed, a), "space": space,
        "sampler": {"name": "iterative-selection", "pool_size": 2048, "per_iteration": per_it, "iterations": its},
        "predictor": {"name": "boosted-trees"},
        "optimizer": {"name": "ees", "population": a.population, "iterations": a.ees_iterations,
                      "mutation_prob": 0.5, "top_k": a.top_k,
                      "base": base_genome(space, baseline_hidden(name, d))},
        "evaluator": {"name": "cv-train", "folds": folds, "measure_latency": False, **train_settings(epochs)},
        "compress": [{"name": "scann", "scheme": "B", "iterations": a.mnist_scann_iterations if mnist
                      else a.scann_iterations, "epochs": a.scann_epochs, "final_epochs": a.final_epochs,
                      "cv_folds": folds}],
    }


def run_unit(name: str, seed: int, a) -> dict:
    """One (dataset, split seed): the three arms on that split."""
    import nascore
    from nascore.data import load_task

    task = load_task(task_table(name, seed, a))
    d = task.input_shape[0]
    base = baseline(name, task, baseline_epochs(name, a), seed)
    t0 = time.perf_counter()
    config = pipeline_config(name, d, seed, a)
    with tempfile.TemporaryDirectory() as tmp:
        result = nascore.run(config, out=Path(tmp) / "run")
        wall = time.perf_counter() - t0
        t1 = time.perf_counter()
        half = half_budget_local_search(config, result, Path(tmp) / "run", task, int(base["params"]) // 2, seed)
        half["seconds"] = time.perf_counter() - t1
    best, stage, info = result["best"], result["stages"][0], result["info"]
    keep = ("valid_accuracy", "cv_accuracy", "test_accuracy", "params", "flops")
    gs = {"tokens": best["tokens"], "genome": best["genome"], **{k: best["metrics"].get(k) for k in keep}}
    ls = {**{k: stage["after"].get(k) for k in ("valid_accuracy", "test_accuracy", "params", "flops")},
          "hidden": stage["info"]["hidden_sizes"], "chosen_step": stage["info"]["chosen_step"],
          "final_training_kept": stage["info"]["final_training_kept"]}
    cost = {"evaluations": result["budget"]["used"], "trained_for_predictor": info.get("trained_for_predictor"),
            "gs_source": info.get("chosen_from"), "predictions": info.get("predictions"),
            "local_search_seconds": stage["seconds"], "wall_seconds": wall}
    print(f"{name} seed {seed}: baseline {base['test_accuracy']:.2f}% / {base['params']}; GS "
          f"{gs['test_accuracy']:.2f}% / {gs['params']}; GS+LS {ls['test_accuracy']:.2f}% / {ls['params']} "
          f"({wall:.0f}s)", flush=True)
    print(f"  GS+LS at half the baseline's params: {half['test_accuracy']:.2f}% / {half['params']}", flush=True)
    return {"seed": seed, "features": d, "test_rows": len(task.test), "baseline": base, "gs": gs, "gs_ls": ls,
            "gs_ls_half": half, "cost": cost}


class _RunContext:
    """What SCANN needs from a run (its seed, config and trainer) for the capped arm."""

    def __init__(self, config: dict):
        self.config, self.seed = config, config["seed"]

    def trainer(self, **overrides):
        from nascore.training import Trainer

        ev = {k: v for k, v in self.config["evaluator"].items() if k not in ("name", "folds", "measure_latency")}
        return Trainer(**{**ev, **overrides})


def half_budget_local_search(config: dict, result: dict, run_dir: Path, task, limit: int, seed: int) -> dict:
    """The GS network (its stored weights) through the same SCANN, asked for at most
    ``limit`` parameters (half the baseline's): the whole budget is used."""
    import json

    import torch

    import nascore

    stored = json.loads((run_dir / "best.json").read_text())
    assert stored["key"] == result["best"]["key"], "the stored weights are the reported GS network's"
    space = _space(config)
    arch = space.make(stored["genome"])
    model = space.build(arch, task)
    model.load_state_dict(torch.load(run_dir / "best.pt", weights_only=True))
    table = {k: v for k, v in config["compress"][0].items() if k != "name"}
    res = nascore.create("compressor", "scann", **{**table, "max_params": limit}).compress(
        arch, model, task, _RunContext(config))
    return {**{k: res.after.get(k) for k in ("valid_accuracy", "test_accuracy", "params", "flops")},
            "limit": limit, "hidden": res.info["hidden_sizes"], "chosen_step": res.info["chosen_step"]}


def _space(config: dict):
    import nascore

    table = dict(config["space"])
    return nascore.create("search_space", table.pop("name"), **table)


def analyse(units: dict) -> tuple[dict, list, list]:
    from nascore.evidence import paired, summarize, verdict

    arms, comps, targets = {}, [], []
    for name, runs in units.items():
        for arm in ("baseline", "gs", "gs_ls", "gs_ls_half"):
            arms[f"{name}/{arm}"] = summarize([r[arm]["test_accuracy"] for r in runs])
            arms[f"{name}/{arm}/params"] = summarize([r[arm]["params"] for r in runs])
        for arm, against in (("gs_ls", "baseline"), ("gs_ls_half", "baseline"), ("gs", "baseline"),
                             ("gs_ls", "gs")):
            for metric in ("test_accuracy", "params"):
                c = {"arm": f"{name}/{arm}", "against": f"{name}/{against}", "metric": metric,
                     **paired([r[arm][metric] for r in runs], [r[against][metric] for r in runs])}
                c["verdict"] = verdict(c) if metric == "test_accuracy" else None
                comps.append(c)
        for arm in ("gs_ls", "gs_ls_half"):
            acc = next(c for c in comps if c["arm"] == f"{name}/{arm}" and c["against"] == f"{name}/baseline"
                       and c["metric"] == "test_accuracy")
            ratio = arms[f"{name}/{arm}/params"]["mean"] / arms[f"{name}/baseline/params"]["mean"]
            z = acc["z"] if acc["z"] is not None and math.isfinite(acc["z"]) else None
            half = acc["diff_mean"] >= 0 and ratio <= 0.5
            targets.append({"name": f"{name}/{arm}: as accurate as the baseline with <= 0.5x its params",
                            "target": "paired mean test-accuracy difference >= 0, mean params ratio <= 0.5",
                            "measured": f"{acc['diff_mean']:+.2f} points (z {'n/a' if z is None else f'{z:.2f}'}, "
                                        f"n {acc['n']}), {ratio:.2f}x params",
                            "met": half, "dataset": name, "arm": arm, "n": acc["n"], "accuracy_diff": acc["diff_mean"],
                            "z": z, "params_ratio": ratio, "as_accurate_and_half_size": half,
                            "better_z2": bool(z is not None and z >= 2 and acc["n"] >= 5)})
    return arms, comps, targets


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny budgets on wine, 2 seeds (seconds)")
    ap.add_argument("--datasets", nargs="*", default=None, choices=DATASETS)
    ap.add_argument("--seeds", type=int, nargs="*", default=None, help="split/run seeds (default 0..4; quick 0 1)")
    ap.add_argument("--name", default="steerage_paired",
                    help="result file name (a run of other datasets leaves steerage_paired.json alone)")
    ap.add_argument("--combine", nargs="+", default=None, metavar="RESULT",
                    help="write the result from the units of these result files (each dataset from exactly "
                         "one; every part's provenance kept) instead of running anything")
    a = ap.parse_args(argv)
    if a.combine:
        return combine(a, [Path(p) for p in a.combine])
    settings = QUICK if a.quick else FULL
    for k, v in settings.items():
        setattr(a, k, v)
    datasets = a.datasets or (["wine"] if a.quick else list(DATASETS))
    seeds = a.seeds if a.seeds is not None else ([0, 1] if a.quick else [0, 1, 2, 3, 4])
    from _common import checkpoint, limit_threads, load_checkpoint, save_checkpoint, write_result

    limit_threads()

    import hashlib

    # resume only units of this very script and settings (dirty files are named, not hashed)
    script = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    ck = None if a.quick else checkpoint(a.name, {"settings": settings, "script": script})
    done = load_checkpoint(ck, {})
    t0 = time.perf_counter()
    units: dict[str, list] = {}
    todo = [(name, seed) for name in datasets for seed in seeds]
    out = {}
    for i, (name, seed) in enumerate(todo):
        key = f"{name}/{seed}"
        if key not in done:
            done[key] = run_unit(name, seed, a)
            save_checkpoint(ck, done)
        units.setdefault(name, []).append(done[key])
        if i + 1 == len(todo) or not a.quick:  # the file always holds every finished unit
            out = report(units, a, complete=i + 1 == len(todo), wall=time.perf_counter() - t0)
            write_result(a.name, out, quick=a.quick, seeds=seeds,
                         settings={**settings, "datasets": datasets},
                         tuned_on="nothing tuned: plugin defaults and the paper's training settings (section "
                                  "5.1.1); epochs and budgets sized to a shared 2-core CPU")
    return out


def combine(a, paths: list[Path]) -> dict:
    """One study from the units of several full result files of this script (e.g. the small
    sets and MNIST-784 run at different commits): each dataset comes from exactly one part,
    every part has the same seeds, and each part's provenance (commit, dirty files, command,
    settings) is kept under ``parts``; the analysis is recomputed from the units."""
    import json

    from _common import write_result

    units, parts, seeds = {}, [], None
    for path in paths:
        data = json.loads(path.read_text())
        prov = data["provenance"]
        if data.get("quick"):
            raise SystemExit(f"{path}: a --quick file cannot be part of the full study")
        if seeds is not None and list(prov["seeds"]) != seeds:
            raise SystemExit(f"{path}: seeds {prov['seeds']} differ from the other parts' {seeds}")
        seeds = list(prov["seeds"])
        for name, runs in data["units"].items():
            if name in units:
                raise SystemExit(f"{path}: dataset {name} is already in another part")
            if [r["seed"] for r in runs] != seeds:
                raise SystemExit(f"{path}: {name} has seeds {[r['seed'] for r in runs]}, not {seeds}")
            units[name] = runs
        try:
            shown = str(path.resolve().relative_to(Path(__file__).resolve().parent.parent))
        except ValueError:
            shown = path.name
        parts.append({"file": shown, "datasets": list(data["units"]), "provenance": prov,
                      "wall_seconds": data.get("wall_seconds")})
    units = {name: units[name] for name in DATASETS if name in units}
    a.quick = False
    out = report(units, a, complete=list(units) == list(DATASETS),
                 wall=sum(p["wall_seconds"] or 0.0 for p in parts))
    out["parts"] = parts
    write_result(a.name, out, quick=False, seeds=seeds,
                 settings={"combined_from": [{"file": p["file"], "datasets": p["datasets"],
                                              "commit": p["provenance"]["commit"],
                                              "dirty": p["provenance"]["dirty"]} for p in parts]},
                 tuned_on=sorted({str(p["provenance"].get("tuned_on")) for p in parts}))
    return out


def report(units: dict, a, complete: bool, wall: float) -> dict:
    arms, comps, targets = analyse(units)
    met = {arm: [t["dataset"] for t in targets if t["arm"] == arm and t["as_accurate_and_half_size"]]
           for arm in ("gs_ls", "gs_ls_half")}
    return {
        "benchmark": a.name, "quick": a.quick, "complete": complete,
        "title": "STEERAGE GS / GS+LS vs the baseline MLP, paired over split seeds",
        "description": ("Per dataset and split seed: baseline MLP (2d, d; LeNet-300-100 for MNIST-784), GS "
                        "(Algorithm 1 + EES + top-k check, chosen on k-fold CV accuracy for the small sets), "
                        "GS+LS (SCANN Scheme B, no size cap, CV-scored steps, final fine-tuning) and GS+LS asked "
                        "for half the baseline's params; test accuracy and params, paired comparisons; verdicts "
                        "need z >= 2 over >= 5 seeds."),
        "arms": arms, "comparisons": comps, "targets": targets,
        "target_summary": {"as_accurate_with_half_params": {arm: f"{len(v)} of {len(units)} datasets (target: 3 of "
                                                                  f"4): {', '.join(v) or 'none'}"
                                                            for arm, v in met.items()},
                           "better_z2": [f"{t['dataset']}/{t['arm']}" for t in targets if t["better_z2"]]},
        "units": units,
        "wall_seconds": wall,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_average": os.getloadavg()},
    }

if __name__ == "__main__":
    main()
