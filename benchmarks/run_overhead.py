"""What a run directory costs: a 100-query tabular random search on NAS-Bench-201, in
memory against the same run writing its run directory (SQLite store, config, result.json)
with ``report = false``, and with the report (HTML and PNG plots).  Issue 20's target: the
run directory without the report costs at most 2x the in-memory run.

Times are wall-clock medians over repeats measured in one process (the same seeds for
every mode), so their ratio is meaningful; absolute times depend on the machine.

    python benchmarks/run_overhead.py [--quick] [--repeats 21]

Writes ``benchmarks/results/run_overhead.json`` (``_quick`` with --quick).
"""

from __future__ import annotations

import argparse
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
CHECK = {"ignore": ["targets.*.measured", "targets.*.met"]}


def config(seed: int, budget: int, report: bool) -> dict:
    return {"name": "overhead", "seed": seed, "budget": budget, "device": "cpu", "report": report,
            "space": {"name": "nb201"}, "sampler": {"name": "random"},
            "optimizer": {"name": "random-search"}, "evaluator": {"name": "tabular"}}


def timed(seed: int, budget: int, mode: str, root: Path) -> float:
    out = root / f"{mode}-{seed}" if mode != "memory" else None
    t = time.perf_counter()
    nascore.run(config(seed, budget, mode == "report"), out=out, quiet=True, write_files=out is not None)
    return time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="5 repeats, no report mode")
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--budget", type=int, default=100)
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
    write_result("run_overhead", result, quick=args.quick,
                 settings={"budget": args.budget, "repeats": repeats, "modes": modes,
                           "optimizer": "random-search", "evaluator": "tabular nb201"},
                 seeds=list(range(repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
