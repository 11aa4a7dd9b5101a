"""Speedup of the ``process`` executor: 8 real candidate trainings on 2 workers vs 1.

Each candidate is a small CNN (its width set by the candidate number) trained from
scratch with Adam on scikit-learn ``digits`` for a few epochs in a plain PyTorch loop,
seeded per candidate so that both executors must produce identical accuracies.  Each
worker uses one torch thread, so the ratio measures process parallelism alone.  The
pool is started and warmed (torch imported, data loaded) before the clock starts; the
start-up time is reported separately.

    nice .venv/bin/python benchmarks/executor_speedup.py [--quick] [--repeats N]

Writes ``benchmarks/results/executor_speedup.json``.  On a shared machine the ratio is
only meaningful together with the load average recorded next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

from nascore.executors import ProcessExecutor, cpu_count, worker_id

RESULTS = Path(__file__).resolve().parent / "results" / "executor_speedup.json"
_DATA = {}

# cores obtained from the OS depend on the machine's load, not on the code
CHECK = {"ignore": ["*cores_obtained*"]}


def _digits():
    """Digits as tensors (train 1200 / valid rest), loaded once per worker."""
    if not _DATA:
        import torch
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        X = torch.tensor(X / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
        y = torch.tensor(y, dtype=torch.int64)
        perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
        X, y = X[perm], y[perm]
        _DATA.update(train=(X[:1200], y[:1200]), valid=(X[1200:], y[1200:]))
    return _DATA


def warm_up(seconds: float) -> str:
    """Import torch and load the data in a worker; sleeping makes each worker take one."""
    _digits()
    time.sleep(seconds)
    return worker_id()


def train_candidate(index: int, epochs: int) -> dict:
    """Train candidate ``index`` (conv widths 8 + 4 * index) and report where it ran."""
    import torch
    from torch import nn

    data = _digits()
    torch.manual_seed(index)
    w = 8 + 4 * index
    model = nn.Sequential(
        nn.Conv2d(1, w, 3, padding=1), nn.ReLU(), nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * w * 16, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    X, y = data["train"]
    gen = torch.Generator().manual_seed(index)
    t0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(epochs):
        for batch in torch.randperm(len(y), generator=gen).split(32):
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(X[batch]), y[batch]).backward()
            opt.step()
    with torch.no_grad():
        Xv, yv = data["valid"]
        acc = (model(Xv).argmax(1) == yv).float().mean().item() * 100
    return {"index": index, "valid_accuracy": acc, "train_seconds": time.perf_counter() - t0,
            "cpu_seconds": time.process_time() - cpu0,
            "worker": worker_id(), "threads": torch.get_num_threads()}


def run_once(workers: int, candidates: int, epochs: int) -> dict:
    t_start = time.perf_counter()
    with ProcessExecutor(workers=workers, threads=1) as ex:
        warmed = {f.result() for f in [ex.submit(warm_up, 1.0) for _ in range(workers)]}
        startup = time.perf_counter() - t_start
        t0 = time.perf_counter()
        futures = [ex.submit(train_candidate, i, epochs) for i in range(candidates)]
        results = [f.result() for f in futures]
        wall = time.perf_counter() - t0
    return {"wall_seconds": wall, "startup_seconds": startup, "workers_used": len({r["worker"] for r in results}),
            "warmed_workers": len(warmed), "sum_train_seconds": sum(r["train_seconds"] for r in results),
            # CPU seconds the jobs got per wall second: ~workers on an idle machine, less when shared
            "cores_obtained": sum(r["cpu_seconds"] for r in results) / wall,
            "accuracies": [round(r["valid_accuracy"], 4) for r in results],
            "threads": sorted({r["threads"] for r in results})}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 epochs, 1 repeat (a smoke test)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per candidate (default 6; quick 2)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per setting, median reported (default 3)")
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None, help="result file (default results/executor_speedup[_quick].json)")
    args = parser.parse_args(argv)
    epochs = args.epochs or (2 if args.quick else 6)
    repeats = args.repeats or (1 if args.quick else 3)
    load_before = os.getloadavg()
    runs = {1: [], 2: []}
    for _ in range(repeats):  # interleaved, so a change in the machine's load hits both
        for workers in (1, 2):
            runs[workers].append(run_once(workers, args.candidates, epochs))
            print(f"workers={workers}: {runs[workers][-1]['wall_seconds']:.2f}s", flush=True)
    median = {w: statistics.median(r["wall_seconds"] for r in rs) for w, rs in runs.items()}
    paired = [a["wall_seconds"] / b["wall_seconds"] for a, b in zip(runs[1], runs[2])]
    same = all(r["accuracies"] == runs[1][0]["accuracies"] for rs in runs.values() for r in rs)
    result = {
        "benchmark": "executor_speedup", "quick": args.quick, "candidates": args.candidates,
        "epochs": epochs, "repeats": repeats, "threads_per_worker": 1,
        "speedup_2_vs_1": median[1] / median[2],
        "speedup_per_repeat": paired,
        "median_cores_obtained": {str(w): statistics.median(r["cores_obtained"] for r in rs) for w, rs in runs.items()},
        "median_wall_seconds": {str(w): m for w, m in median.items()},
        "identical_accuracies": same, "runs": {str(w): rs for w, rs in runs.items()},
        "cpu_count": cpu_count(), "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "python": platform.python_version(),
        "note": "ideal speedup is min(2, idle cores); on a shared machine read it with cores_obtained "
                "and the load averages",
    }
    from _common import write_result

    write_result("executor_speedup", result, quick=args.quick,
                 settings={"candidates": args.candidates, "epochs": epochs, "repeats": repeats, "workers": [1, 2]},
                 seeds=list(range(args.candidates)), tuned_on=None, path=args.out)
    print(f"speedup 2 vs 1 workers: {result['speedup_2_vs_1']:.2f}x ({median[1]:.2f}s vs {median[2]:.2f}s; "
          f"per repeat {', '.join(f'{x:.2f}' for x in paired)}), cores obtained "
          f"{result['median_cores_obtained']}, load {load_before[0]:.1f}, identical accuracies: {same} -> {args.out}")
    return result


if __name__ == "__main__":
    main()
