"""Cross-plugin pipelines (examples/compose_*.toml) at real budgets, against the simple
baselines they replace.  Every run is a real ``nascore.run`` of the example file, with
the changes listed per part; nothing is simulated.

* ``ngram_ees`` -- ``compose_ngram_srm_ees.toml`` (ngram + srm steering ees over
  ``metaqnn`` on digits, srm-stop on) against the same file without srm-stop (ees alone
  on the ngram/srm predictor) and against random search at the same budget (train
  evaluator alone).  Per seed: test accuracy of the answer (ees: its winner; random
  search: the best-validation candidate), epochs trained in all, wall time.
* ``ray`` -- ``compose_ray.toml`` (the pipeline above on the ray executor, 2 workers)
  against the process pool: the same history, and the wall time of each.
* ``tnas_iterative_nb201`` -- ``compose_tnas_iterative_nb201.toml`` (the tnas sampler
  filling iterative-selection's pool, boosted trees picking) against iterative-selection
  on its own Sobol pool (STEERAGE Algorithm 1 as published), the tnas sampler alone,
  random sampling and regularized evolution (population 30, sample 10); 100 table
  queries, feedback ``<ds>_valid``, reported: ``<ds>_test`` of the best-valid architecture.
* ``msranas_nat_quantize`` and ``tnas_nat_nest`` -- the example files as they are: the
  accuracy, params, FLOPs and weight bits after each stage.

    python benchmarks/compose_pipelines.py [--quick] [--only PART ...] [--seeds N] [--nb201-seeds N] [--small-stages]

Writes ``benchmarks/results/compose_pipelines.json`` (``_quick`` with --quick) from this
invocation's parts alone (``--only`` writes a file with those parts only).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nascore
from nascore import config as cfg

from _common import write_result  # noqa: E402 - sibling module (benchmarks/ is on sys.path)

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples"
PARTS = ("ngram_ees", "ray", "tnas_iterative_nb201", "msranas_nat_quantize", "tnas_nat_nest")
#: parts that run one example file through its stages (``--small-stages`` runs them with
#: the quick mode's reduced settings, :data:`STAGE_SETS`)
STAGE_PARTS = ("msranas_nat_quantize", "tnas_nat_nest")
DATASETS = ("cifar10", "cifar100", "imagenet16")
#: ../shared/data/README.md: mean over 200 seeds of the test accuracy of the best-valid
#: architecture after 100 queries, and what a perfect search reports
REFERENCE = {"random": {"cifar10": 93.81, "cifar100": 71.42, "imagenet16": 45.40},
             "regularized-evolution": {"cifar10": 94.18, "cifar100": 72.87, "imagenet16": 46.21},
             "table best-valid": {"cifar10": 94.37, "cifar100": 73.51, "imagenet16": 46.20}}

# the description quotes the machine's load average at the end of the run
CHECK = {"ignore": ["description"]}


def example(name: str) -> dict:
    return cfg.load(EXAMPLES / name)


def run(config: dict, sets=(), out: Path | None = None) -> tuple[dict, float]:
    t = time.perf_counter()
    result = nascore.run(config, out=out, sets=list(sets), quiet=True, write_files=out is not None)
    return result, time.perf_counter() - t


def answer(result: dict) -> dict:
    """The run's answer (result["best"]: ees's winner, else the best-validation candidate),
    the best-validation candidate of all trained in full, and the epochs trained in all."""
    m = result["best"]["metrics"]
    ok = [e["metrics"] for e in result["evaluations"] if e["status"] == "ok"]
    top = max(ok, key=lambda x: x["valid_accuracy"]) if ok else {}
    epochs = sum(e["metrics"].get("epochs", 0) for e in result["evaluations"])
    return {"test_accuracy": m.get("test_accuracy"), "valid_accuracy": m.get("valid_accuracy"),
            "params": m.get("params"), "best_valid_test_accuracy": top.get("test_accuracy"),
            "best_valid_params": top.get("params"), "epochs_trained": epochs,
            "stopped": result["counts"]["stopped"], "evaluations": len(result["evaluations"])}


def mean(xs) -> float:
    xs = [x for x in xs if x is not None]
    return statistics.fmean(xs) if xs else float("nan")


def std(xs) -> float:
    xs = [x for x in xs if x is not None]
    return statistics.stdev(xs) if len(xs) > 1 else 0.0


# --------------------------------------------------------------------------- parts


def part_ngram_ees(quick: bool, seeds: int) -> dict:
    base = example("compose_ngram_srm_ees.toml")
    if quick:
        base.update(budget=10)
        base["optimizer"]["iterations"] = 10
        base["stopper"]["min_curves"] = 4
    no_stop = {k: v for k, v in base.items() if k != "stopper"}
    random = {k: v for k, v in base.items() if k not in ("stopper", "encoder", "predictor")}
    random["optimizer"] = {"name": "random-search", "batch_size": 4}
    variants = {"ngram+srm -> ees, srm-stop": base, "ngram+srm -> ees": no_stop, "random search": random}
    runs = []
    for seed in range(seeds):
        for label, config in variants.items():
            result, seconds = run(config, [f"seed={seed}"])
            runs.append({"pipeline": label, "seed": seed, **answer(result), "seconds": seconds})
            print(f"  ngram_ees seed {seed} {label}: {runs[-1]}", flush=True)
    rows = []
    for label in variants:
        rs = [r for r in runs if r["pipeline"] == label]
        rows.append({"pipeline": label, "seeds": len(rs),
                     "test accuracy of the answer": mean(r["test_accuracy"] for r in rs),
                     "std": std(r["test_accuracy"] for r in rs),
                     "params of the answer": mean(r["params"] for r in rs),
                     "test accuracy of the best-valid candidate": mean(r["best_valid_test_accuracy"] for r in rs),
                     "epochs trained": mean(r["epochs_trained"] for r in rs),
                     "stopped early": mean(r["stopped"] for r in rs),
                     "wall s": mean(r["seconds"] for r in rs)})
    return {"rows": rows, "runs": runs, "budget": base["budget"], "epochs per candidate": base["evaluator"]["epochs"]}


def part_ray(quick: bool, seeds: int) -> dict:
    tiny = ["budget=13", "optimizer.iterations=5", "stopper.min_curves=4"] if quick else []
    out = {}
    for label, name in (("process pool, 2 workers", "compose_ngram_srm_ees.toml"),
                        ("ray, 2 workers", "compose_ray.toml")):
        result, seconds = run(example(name), tiny)
        out[label] = {"history": [(e["key"], e["status"]) for e in result["evaluations"]],
                      "workers": len({e["worker"] for e in result["evaluations"]}),
                      "seconds": seconds, **answer(result)}
        print(f"  ray {label}: {seconds:.1f}s", flush=True)
    a, b = out.values()
    rows = [{"executor": k, "wall s": v["seconds"], "worker processes": v["workers"],
             "test accuracy of the answer": v["test_accuracy"], "evaluations": v["evaluations"]}
            for k, v in out.items()]
    return {"rows": rows, "same history": a["history"] == b["history"],
            "same answer": a["test_accuracy"] == b["test_accuracy"]}


def nb201_variants(quick: bool) -> dict:
    compose = example("compose_tnas_iterative_nb201.toml")
    sobol = json.loads(json.dumps(compose))
    sobol["sampler"] = {"name": "iterative-selection", "pool_size": 2048, "per_iteration": 20, "iterations": 4}
    tnas = {**{k: v for k, v in compose.items() if k not in ("encoder", "predictor")},
            "sampler": {"name": "tnas"}, "optimizer": {"name": "random-search", "batch_size": 10}}
    random = {**tnas, "sampler": {"name": "random"}}
    evolution = {**random, "optimizer": {"name": "regularized-evolution", "population": 30, "sample_size": 10}}
    return {"tnas -> iterative-selection (boosted trees)": compose,
            "iterative-selection, Sobol pool (STEERAGE Alg. 1)": sobol,
            "tnas sampler alone": tnas, "random": random, "regularized evolution": evolution}


def part_tnas_iterative_nb201(quick: bool, seeds: int) -> dict:
    from nascore.testing import require_data  # noqa: F401 - documents the data it needs

    variants = nb201_variants(quick)
    datasets = DATASETS[:1] if quick else DATASETS
    runs = []
    for ds in datasets:
        for seed in range(3000, 3000 + seeds):
            for label, config in variants.items():
                sets = [f"seed={seed}", f'evaluator.feedback="{ds}_valid"', f'evaluator.report="{ds}_test"']
                result, seconds = run(config, sets)
                m = result["best"]["metrics"]
                runs.append({"dataset": ds, "seed": seed, "pipeline": label, "test": m["test_accuracy"],
                             "valid": m["valid_accuracy"], "seconds": seconds})
            print(f"  nb201 {ds} seed {seed}: " + ", ".join(f"{r['test']:.2f}" for r in runs[-len(variants):]),
                  flush=True)
    rows = []
    for label in variants:
        row = {"pipeline": label}
        for ds in datasets:
            rs = [r for r in runs if r["pipeline"] == label and r["dataset"] == ds]
            row[f"{ds} test"] = mean(r["test"] for r in rs)
            row[f"{ds} std"] = std(r["test"] for r in rs)
        row["wall s per run"] = mean(r["seconds"] for r in runs if r["pipeline"] == label)
        rows.append(row)
    for label, ref in REFERENCE.items():
        rows.append({"pipeline": f"reference: {label} (200 seeds)", **{f"{ds} test": ref[ds] for ds in datasets}})
    return {"rows": rows, "seeds": seeds, "queries": 100, "runs": runs}


def stage_rows(result: dict) -> list[dict]:
    best = result["best"]["metrics"]
    rows = [{"stage": "search (" + result["config"]["optimizer"]["name"] + ")",
             "test accuracy": best.get("test_accuracy"), "valid accuracy": best.get("valid_accuracy"),
             "params": best.get("params"), "MFLOPs": best.get("flops", 0) / 1e6, "weight bits": None}]
    for stage in result["stages"]:
        a = stage["after"]
        rows.append({"stage": stage["compressor"], "test accuracy": a.get("test_accuracy"),
                     "valid accuracy": a.get("valid_accuracy"), "params": a.get("params"),
                     "MFLOPs": a.get("flops", 0) / 1e6, "weight bits": a.get("model_bits"),
                     "seconds": stage.get("seconds")})
    return rows


def part_stages(name: str, quick_sets: list[str], quick: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        result, seconds = run(example(name), quick_sets if quick else [], out=Path(tmp) / "run")
    return {"rows": stage_rows(result), "wall s": seconds,
            "stage info": [{k: v for k, v in s["info"].items() if k in ("genotype_before", "genotype_after",
                                                                           "changed_edges", "chosen_step")}
                           for s in result["stages"]]}


#: the reduced settings of the stage parts (--quick, and --small-stages)
STAGE_SETS = {
    "msranas_nat_quantize": ["optimizer.epochs=1", "evaluator.epochs=2", "space.layers=3", "space.C=4",
                             "space.scales=2", "optimizer.search_layers=2", "optimizer.search_scales=2",
                             "compress.0.epochs=1", "compress.0.samples=2", "compress.0.C=4", "compress.0.layers=3"],
    "tnas_nat_nest": ["optimizer.epochs=1", "optimizer.generations=1", "optimizer.population=6", "evaluator.epochs=2",
                      "space.layers=3", "space.C=4", "compress.0.epochs=1", "compress.0.samples=2", "compress.0.C=4",
                      "compress.0.layers=3", "compress.1.iterations=3", "compress.1.final_epochs=0"],
}


def part_msranas_nat_quantize(quick: bool, seeds: int) -> dict:
    return part_stages("compose_msranas_nat_quantize.toml", STAGE_SETS["msranas_nat_quantize"], quick)


def part_tnas_nat_nest(quick: bool, seeds: int) -> dict:
    return part_stages("compose_tnas_nat_nest.toml", STAGE_SETS["tnas_nat_nest"], quick)


# --------------------------------------------------------------------------- main


def summarize(parts: dict) -> dict:
    titles = {"ngram_ees": "ngram + srm steering ees over metaqnn (digits), with and without srm-stop, vs random search",
              "ray": "the same pipeline on the ray executor vs the process pool",
              "tnas_iterative_nb201": "tnas sampler -> iterative-selection (boosted trees) on NAS-Bench-201, 100 queries",
              "msranas_nat_quantize": "msranas -> nat -> quantize 8 bits (digits): after each stage",
              "tnas_nat_nest": "tnas-oneshot (darts) -> nat -> nest (digits): after each stage"}
    out = {}
    for name in PARTS:
        if name in parts:
            data = parts[name]
            extra = {k: v for k, v in data.items() if k not in ("rows", "runs", "stage info") and not isinstance(v, list)}
            out[titles[name]] = data["rows"] if not extra else {"table": data["rows"], **extra}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny budgets, one seed")
    ap.add_argument("--only", nargs="*", choices=PARTS, help="parts to run (default: all)")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per comparison (default 3 / 10 on NB-201)")
    ap.add_argument("--nb201-seeds", type=int, default=None,
                    help="seeds of the NB-201 part (default: --seeds, else 10; quick 2)")
    ap.add_argument("--small-stages", action="store_true",
                    help="the stage parts (msranas_nat_quantize, tnas_nat_nest) with the quick mode's reduced "
                         "settings, the other parts at full budget (the full MS-RANAS part alone is ~50 min)")
    args = ap.parse_args(argv)
    fresh = {}
    for name in args.only or PARTS:
        seeds = args.seeds or (1 if args.quick else (10 if name == "tnas_iterative_nb201" else 3))
        if args.quick and name == "tnas_iterative_nb201":
            seeds = 2
        if args.nb201_seeds and name == "tnas_iterative_nb201":
            seeds = args.nb201_seeds
        small = args.quick or (args.small_stages and name in STAGE_PARTS)
        print(f"== {name} ({seeds} seeds{', reduced settings' if small else ''})", flush=True)
        t = time.perf_counter()
        fresh[name] = {**globals()[f"part_{name}"](small, seeds), "part seconds": time.perf_counter() - t}
    # one invocation's parts only: nothing is merged from an earlier file
    data = dict(
        title="Composed pipelines (examples/compose_*.toml) vs the baselines they replace",
        description=("Each pipeline mixes components of several plugin packages; every figure is a real "
                     "`nascore.run` of the example file (see the script's docstring for the exact variants). "
                     f"Machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end. "
                     "Fewer than 5 seeds per comparison: differences here are descriptive, not evidence."
                     + (" The stage parts ran with reduced settings (--small-stages; provenance settings "
                        "small_stages), not the example files' budgets." if args.small_stages else "")),
        parts=fresh, summary=summarize(fresh))
    # ngram_ees runs --seeds seeds, NB-201 its own; ray and the stage parts run their
    # example file once, with the file's seed
    one_run = {"ray": "compose_ngram_srm_ees.toml", "msranas_nat_quantize": "compose_msranas_nat_quantize.toml",
               "tnas_nat_nest": "compose_tnas_nat_nest.toml"}
    seeds_of = {n: (list(range(3000, 3000 + fresh[n]["seeds"])) if n == "tnas_iterative_nb201"
                    else [example(one_run[n])["seed"]] if n in one_run
                    else list(range(args.seeds or (1 if args.quick else 3))))
                for n in fresh}
    write_result("compose_pipelines", data, quick=args.quick,
                 settings={"parts": list(fresh), "quick": args.quick,
                           **({"nb201_seeds": args.nb201_seeds} if args.nb201_seeds else {}),
                           **({"small_stages": {n: STAGE_SETS[n] for n in STAGE_PARTS if n in fresh}}
                              if args.small_stages else {})},
                 seeds=seeds_of,
                 tuned_on="each plugin's defaults (see their benchmarks); nothing tuned here")
    return 0


if __name__ == "__main__":
    sys.exit(main())
