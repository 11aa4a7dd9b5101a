"""TNAS sampling study on NAS-Bench-201 (Tables 4/5 analog of the TNAS paper, Section 5.3).

Every run is a real pipeline run (``nascore.run``) with the core ``tabular`` evaluator on
``$NASCORE_DATA/nb201/nb201.csv``: feedback ``<ds>_valid``, reported ``<ds>_test``.

* ``tnas eps_inc=E``: optimizer ``random-search`` (asks of ``batch`` architectures) with
  the ``tnas`` sampler, for each ``eps_inc`` of the paper's Table 4;
* ``random``: the same optimizer with the ``random`` sampler;
* ``regularized-evolution``: population 30, tournament 10 (the README's reference).

Two protocols, reported per method as means over seeds:

* ``q100`` (50 seeds, 100 queries), the headline: ``test`` of the best-``valid``
  architecture found, the best ``valid`` itself (the search's own objective), the share of
  seeds that found the table's best ``valid``, and top-{10, 50, 100} statistics;
* ``q300`` (10 seeds -- compute-bound on 2 shared cores -- and 300 queries), the Table 4
  analog: among all queried architectures, the top-k by ``valid`` for k in
  {10, 50, 100, 300}: the max and the mean of their ``test``.  Its first 100 queries
  are exactly a 100-query run (every method is causal); ``prefix_check`` verifies it.

The TNAS settings the paper leaves open come from ``tnas_tune.py`` (CIFAR-10 valid only).
Results are merged into the JSON per (dataset, method), so the study can be run in parts
(``--datasets``, ``--methods``) and resumed; ``--force`` recomputes.

    python benchmarks/tnas_nb201.py [--quick] [--seeds 50] [--datasets cifar10 ...]

Writes ``benchmarks/results/tnas_nb201.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "tnas_nb201.json"
DATASETS = ("cifar10", "cifar100", "imagenet16")
EPS_INC = (0.0, 0.04, 0.05, 0.0625, 0.1, 0.2, 0.5)
TOPK = (10, 50, 100, 300)
#: protocol -> (seeds, queries): the headline at 100 queries and the Table 4 analog at 300
PROTOCOLS = {"q100": (50, 100), "q300": (10, 300)}
#: settings the paper leaves open, chosen by tnas_tune.py on CIFAR-10 valid
TUNED = {"vae_layers": 1, "vae_steps": 30, "top_fraction": 0.1}
BATCH = 10
#: shared/data/README.md, 100 queries, mean over 200 seeds: test of the best-valid architecture
REFERENCE = {"random": {"cifar10": 93.81, "cifar100": 71.42, "imagenet16": 45.40},
             "regularized-evolution": {"cifar10": 94.18, "cifar100": 72.87, "imagenet16": 46.21},
             "best-valid architecture": {"cifar10": 94.37, "cifar100": 73.51, "imagenet16": 46.20}}
TARGET = {"cifar10": 94.30, "cifar100": 73.30, "imagenet16": 46.40}


def table_path() -> str:
    root = Path(os.environ.get("NASCORE_DATA", HERE.parent.parent / "shared" / "data"))
    return str(root / "nb201" / "nb201.csv")


def methods(eps_values) -> dict:
    """method name -> (sampler table, optimizer table)."""
    out = {"random": ({"name": "random"}, {"name": "random-search", "batch_size": BATCH}),
           "regularized-evolution": ({"name": "random"}, {"name": "regularized-evolution", "population": 30,
                                                          "sample_size": 10})}
    for eps in eps_values:
        out[f"tnas eps_inc={eps:g}"] = ({"name": "tnas", "eps_inc": eps, **TUNED},
                                        {"name": "random-search", "batch_size": BATCH})
    return out


def config(ds: str, sampler: dict, optimizer: dict, seed: int, queries: int) -> dict:
    return {"name": "tnas-nb201", "seed": seed, "budget": queries, "device": "cpu",
            "space": {"name": "nb201"}, "sampler": sampler, "optimizer": optimizer,
            "evaluator": {"name": "tabular", "path": table_path(), "feedback": f"{ds}_valid",
                          "report": f"{ds}_test", "params_column": f"params_mb_{ds}",
                          "flops_column": f"flops_m_{ds}"}}


def one_run(args) -> dict:
    """One seed of one method: the queried (valid, test) pairs in query order."""
    ds, sampler, optimizer, seed, queries = args
    import torch

    import nascore

    torch.set_num_threads(1)
    t = time.perf_counter()
    res = nascore.run(config(ds, sampler, optimizer, seed, queries), write_files=False)
    evals = [e for e in res["evaluations"] if e["status"] == "ok"]
    return {"valid": [e["metrics"]["valid_accuracy"] for e in evals],
            "test": [e["metrics"]["test_accuracy"] for e in evals], "seconds": time.perf_counter() - t,
            "info": res.get("info", {})}


def table_best_valid(ds: str) -> float:
    import csv

    with open(table_path(), newline="") as f:
        return max(float(r[f"{ds}_valid"]) for r in csv.DictReader(f))


def summarize(runs: list[dict], headline: int, best_in_table: float) -> dict:
    """Headline (first ``headline`` queries) and top-k statistics, mean over seeds."""
    best_valid, best_test, top = [], [], {k: {"max": [], "mean": []} for k in TOPK}
    for r in runs:
        v, t = np.array(r["valid"]), np.array(r["test"])
        i = int(np.argmax(v[:headline]))
        best_valid.append(v[i])
        best_test.append(t[i])
        order = np.argsort(-v, kind="stable")
        for k in TOPK:
            if len(v) >= k:
                top[k]["max"].append(float(t[order[:k]].max()))
                top[k]["mean"].append(float(t[order[:k]].mean()))
    stat = lambda x: {"mean": float(np.mean(x)), "std": float(np.std(x)),  # noqa: E731
                      "se": float(np.std(x) / np.sqrt(len(x)))}
    return {"seeds": len(runs), f"best_valid_at_{headline}": stat(best_valid),
            f"test_of_best_valid_at_{headline}": stat(best_test),
            "found_best_valid_share": float(np.mean(np.array(best_valid) >= best_in_table - 1e-9)),
            "topk_test": {str(k): {"max": float(np.mean(d["max"])), "mean": float(np.mean(d["mean"]))}
                          for k, d in top.items() if d["max"]},
            "seconds_per_run": float(np.mean([r["seconds"] for r in runs])),
            "per_seed": {"best_valid": [float(x) for x in best_valid], "test": [float(x) for x in best_test]}}


def check_prefix(ds: str, queries: int) -> dict:
    """The first 100 queries of a ``queries``-query TNAS run equal a 100-query run."""
    sampler, optimizer = methods([0.2])["tnas eps_inc=0.2"]
    long = one_run((ds, sampler, optimizer, 0, queries))
    short = one_run((ds, sampler, optimizer, 0, 100))
    return {"dataset": ds, "equal": long["valid"][:100] == short["valid"] and long["test"][:100] == short["test"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="3 seeds, 100 queries, CIFAR-10, eps_inc 0.2 only")
    ap.add_argument("--protocols", nargs="*", default=list(PROTOCOLS), choices=list(PROTOCOLS))
    ap.add_argument("--seeds", type=int, help="override the seeds of every protocol")
    ap.add_argument("--datasets", nargs="*", default=list(DATASETS), choices=DATASETS)
    ap.add_argument("--methods", nargs="*", help="subset of method names (default: all)")
    ap.add_argument("--workers", type=int, default=1, help="processes (the machine is shared: keep it small)")
    ap.add_argument("--force", action="store_true", help="recompute methods already in the JSON")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    eps_values = (0.2,) if args.quick else EPS_INC
    protocols = {"q100": (3, 100)} if args.quick else {p: PROTOCOLS[p] for p in args.protocols}
    datasets = ["cifar10"] if args.quick else args.datasets
    out = args.out if not args.quick else args.out.with_name(args.out.stem + "_quick.json")
    data = json.loads(out.read_text()) if out.exists() and not args.force else {}
    data.update({"protocol": {"protocols": {p: {"seeds": s, "queries": q} for p, (s, q) in PROTOCOLS.items()},
                              "headline_queries": 100, "batch": BATCH, "tuned": TUNED, "topk": list(TOPK),
                              "regularized_evolution": {"population": 30, "sample_size": 10}},
                 "reference_test_at_100": REFERENCE, "target_test_at_100": TARGET})
    pool = None
    if args.workers > 1:
        import multiprocessing as mp

        pool = mp.get_context("spawn").Pool(args.workers)
    for proto, (seeds, queries) in protocols.items():
        seeds = args.seeds or seeds
        results = data.setdefault("results", {}).setdefault(proto, {})
        for ds in datasets:
            for name, (sampler, optimizer) in methods(eps_values).items():
                if args.methods and name not in args.methods:
                    continue
                done = results.get(ds, {}).get(name)
                if done and done["seeds"] >= seeds and not args.force:
                    continue
                jobs = [(ds, sampler, optimizer, s, queries) for s in range(seeds)]
                t = time.perf_counter()
                runs = pool.map(one_run, jobs) if pool else [one_run(j) for j in jobs]
                row = results.setdefault(ds, {})[name] = summarize(runs, 100, table_best_valid(ds))
                row["wall_seconds"] = time.perf_counter() - t
                print(f"{proto} {ds:10s} {name:24s} valid@100 {row['best_valid_at_100']['mean']:.3f} "
                      f"test@100 {row['test_of_best_valid_at_100']['mean']:.3f} ({row['wall_seconds']:.0f}s)",
                      flush=True)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(data, indent=1))
    if pool:
        pool.close()
    if not args.quick and "q300" in protocols and "prefix_check" not in data:
        data["prefix_check"] = check_prefix("cifar10", PROTOCOLS["q300"][1])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
