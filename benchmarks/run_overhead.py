"""What a run directory costs: a 100-query tabular random search on NAS-Bench-201, in
memory against the same run writing its run directory (SQLite store, config, result.json)
with ``report = false``, and with the report (HTML and PNG plots).  Issue 20's target: the
run directory without the report costs at most 2x the in-memory run.

Times are wall-clock medians over repeats measured in one process (the same seeds for
every mode), so their ratio is meaningful; absolute times depend on the machine.

Second part (``refit``, issue 20 item 3): the CPU time (``time.process_time``, all threads)
of a 100-query tabular run of each predictor-driven composition, with the refits as they
were (``reference``: scikit-learn's ``AdaBoostRegressor.fit`` for the boosted trees, the
TNAS VAE on torch's default intra-op threads) and as they are (``lean``: the boosted trees'
own AdaBoost.R2 loop, the VAE on one thread), seeds paired, in one process; ``identical``
says whether both gave the same evaluations in the same order for every seed (always for
the boosted trees; for the VAE only by luck, since its weights depend on the thread count).
The reference's threads spin while idle, so its CPU time grows with the machine's load
(recorded).

    python benchmarks/run_overhead.py [--quick] [--repeats 21] [--refit-seeds 3]

Writes ``benchmarks/results/run_overhead.json`` (``_quick`` with --quick).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nascore

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

#: bench_check: everything here is a timing
CHECK = {"ignore": ["targets.*.measured", "targets.*.met", "refit_conditions.load_average",
                   "refit_conditions.torch_threads", "refit.*.*cpu*", "refit.*.reference/lean",
                   "refit_cpu_s_per_seed.*",
                   # the VAE's weights depend on the thread count the reference runs with
                   "refit.1.identical"]}


def config(seed: int, budget: int, report: bool) -> dict:
    return {"name": "overhead", "seed": seed, "budget": budget, "device": "cpu", "report": report,
            "space": {"name": "nb201"}, "sampler": {"name": "random"},
            "optimizer": {"name": "random-search"}, "evaluator": {"name": "tabular"}}


def timed(seed: int, budget: int, mode: str, root: Path) -> float:
    out = root / f"{mode}-{seed}" if mode != "memory" else None
    t = time.perf_counter()
    nascore.run(config(seed, budget, mode == "report"), out=out, quiet=True, write_files=out is not None)
    return time.perf_counter() - t


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def refit_pipelines(budget: int) -> dict:
    """The predictor-driven compositions of issue 20's table, as configs."""
    from nascore import config as cfg

    tabular = {"name": "tabular", "feedback": "cifar10_valid", "report": "cifar10_test"}
    out = {}
    for name, file in (("tnas -> iterative-selection -> boosted-trees", "compose_tnas_iterative_nb201.toml"),
                       ("tnas sampler + random-search", "tnas_nb201.toml")):
        out[name] = {**cfg.load(EXAMPLES / file), "report": False, "budget": budget}
    out["ees (onehot + boosted-trees)"] = {
        "name": "ees-nb201", "budget": budget, "device": "cpu", "report": False, "space": {"name": "nb201"},
        "sampler": {"name": "random"}, "encoder": {"name": "onehot"}, "predictor": {"name": "boosted-trees"},
        "optimizer": {"name": "ees"}, "evaluator": tabular}
    return out


class reference_refits:
    """The refits as they were before issue 20's item 3: scikit-learn's AdaBoostRegressor
    fit (clone, validation and input checks per tree) and the TNAS VAE on torch's default
    threads."""

    def __enter__(self):
        import nascore_steerage.predictor as bt
        import nascore_tnas.distribution as dist

        self.saved = (bt.BoostedTreesPredictor._boost, dist._one_thread)
        bt.BoostedTreesPredictor._boost = lambda self, X, y: self._regressor().fit(X, y)
        dist._one_thread = lambda small: contextlib.nullcontext()  # torch's default threads
        return self

    def __exit__(self, *exc):
        import nascore_steerage.predictor as bt
        import nascore_tnas.distribution as dist

        bt.BoostedTreesPredictor._boost, dist._one_thread = self.saved


def refit_cost(budget: int, seeds: list[int]) -> dict:
    import os

    import torch

    out = {}
    for name, config in refit_pipelines(budget).items():
        cpu = {"reference": [], "lean": []}
        identical = True
        nascore.run({**config, "seed": 999}, quiet=True, write_files=False)  # warm-up: imports, table
        for seed in seeds:
            keys = {}
            for mode in ("reference", "lean"):
                with reference_refits() if mode == "reference" else contextlib.nullcontext():
                    t = time.process_time()
                    result = nascore.run({**config, "seed": seed}, quiet=True, write_files=False)
                    cpu[mode].append(time.process_time() - t)
                keys[mode] = [e["key"] for e in result["evaluations"]]
            identical = identical and keys["reference"] == keys["lean"]
        med = {m: statistics.median(v) for m, v in cpu.items()}
        out[name] = {"pipeline": name, "reference_cpu_s": med["reference"], "lean_cpu_s": med["lean"],
                     "reference/lean": med["reference"] / med["lean"], "identical": identical,
                     "cpu_s_per_seed": cpu}
        print(f"{name}: reference {med['reference']:.2f} s, lean {med['lean']:.2f} s CPU "
              f"({med['reference'] / med['lean']:.1f}x), identical {identical}", flush=True)
    return {"refit": [{k: v for k, v in row.items() if k != "cpu_s_per_seed"} for row in out.values()],
            "refit_conditions": {"budget": budget, "seeds": seeds, "torch_threads": torch.get_num_threads(),
                                 "load_average": list(os.getloadavg())},
            "refit_cpu_s_per_seed": {name: row["cpu_s_per_seed"] for name, row in out.items()}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="5 repeats, no report mode")
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--budget", type=int, default=100)
    ap.add_argument("--refit-seeds", type=int, default=3, help="seeds of the refit part (quick: 1, budget 40)")
    args = ap.parse_args(argv)
    repeats = 5 if args.quick else args.repeats
    modes = ["memory", "rundir"] + ([] if args.quick else ["report"])
    times = {m: [] for m in modes}
    with tempfile.TemporaryDirectory() as tmp:
        timed(999, args.budget, "memory", Path(tmp))  # warm-up: table load, imports
        for seed in range(repeats):
            for mode in modes:
                if mode == "report" and seed >= 2:
                    continue  # the report is slow; two runs give its order of magnitude
                times[mode].append(timed(seed, args.budget, mode, Path(tmp)))
    med = {m: statistics.median(v) for m, v in times.items()}
    ratios = {f"{m}/memory": med[m] / med["memory"] for m in modes if m != "memory"}
    result = {"title": "What a run directory costs (run_overhead)",
              "description": "100-query tabular random search on NB-201: wall-clock medians in one process; "
                             "rundir = SQLite store + config + result.json, report = false; report = with HTML/PNGs.",
              "timings_s": {m: {"n": len(v), "median_s": med[m]} for m, v in times.items()},
              "ratios": ratios,
              "targets": [{"name": "run directory, report = false, vs in memory", "target": "<= 2x",
                           "measured": f"{ratios['rundir/memory']:.2f}x", "met": ratios["rundir/memory"] <= 2}]}
    for k, v in ratios.items():
        print(f"{k}: {v:.2f}x  (memory {med['memory'] * 1000:.1f} ms)")
    refit_budget, refit_seeds = (40, [0]) if args.quick else (args.budget, list(range(args.refit_seeds)))
    result.update(refit_cost(refit_budget, refit_seeds))
    write_result("run_overhead", result, quick=args.quick,
                 settings={"budget": args.budget, "repeats": repeats, "modes": modes,
                           "optimizer": "random-search", "evaluator": "tabular nb201",
                           "refit_budget": refit_budget, "refit_seeds": refit_seeds},
                 seeds=list(range(repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
