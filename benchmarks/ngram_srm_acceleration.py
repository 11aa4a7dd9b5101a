"""Search acceleration with ``srm-stop``: the same search with and without it.

Two measurements (issue 4; target: <= 50% of the epochs, best accuracy within 0.5):

1. **Replay** on the learning-curve set (``ngram_srm_curves.json``): a random search
   evaluates the set's architectures in a random order, in batches of 4; with
   ``srm-stop`` each candidate's curve is cut where the stopper says so.  Training is
   deterministic given the run seed, so the cut curve is exactly what training would have
   produced; this lets us average over many search orders.
2. **Real run**: ``nascore.run`` of one learning-curve run's configuration (same seed,
   space, budget, trainer) with ``[stopper] name = "srm-stop"`` added, compared with the
   stored run without it (epochs trained, best accuracy, wall time).

    python benchmarks/ngram_srm_acceleration.py [--quick] [--no-real]

Writes ``benchmarks/results/ngram_srm_acceleration.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from ngram_srm_tables import curve_set_path  # sibling script: benchmarks/ is on sys.path when run

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TARGET_EPOCHS, TARGET_GAP = 0.5, 0.5


def load(path: Path) -> dict:
    data = json.loads(path.read_text())
    rows = data["evaluations"]
    return {"curves": np.array([r["curve"] for r in rows], float), "keys": [r["key"] for r in rows],
            "valid": np.array([r["valid_accuracy"] for r in rows]),
            "test": np.array([r["test_accuracy"] for r in rows]), "run": [r["run"] for r in rows], "meta": data}


def replay(curves, order, stopper_params: dict | None, batch: int = 4, keys=None) -> dict:
    """A random search over ``order`` with (or without) srm-stop; returns the epochs
    trained, the index of the best completed candidate and how many were stopped."""
    from nascore_ngram_srm.stopper import SRMEarlyStopping

    T = curves.shape[1]
    stopper = SRMEarlyStopping(**stopper_params) if stopper_params is not None else None
    history, epochs, stopped = [], 0, 0
    for start in range(0, len(order), batch):
        if stopper is not None:
            stopper.update(history)
        for i in order[start:start + batch]:
            n = T
            if stopper is not None:
                for k in range(1, T):
                    stop, _ = stopper.should_stop(curves[i, :k], T)
                    if stop:
                        n = k
                        break
            epochs += n
            stopped += n < T
            status = "ok" if n == T else "stopped"
            history.append({"key": None if keys is None else keys[i], "status": status,
                            "metrics": {"valid_accuracy": float(curves[i, n - 1]), "index": int(i)},
                            "curve": [float(v) for v in curves[i, :n]]})
    done = [h["metrics"]["index"] for h in history if h["status"] == "ok"]
    best = max(done, key=lambda i: curves[i, -1])
    return {"epochs": epochs, "best": int(best), "stopped": stopped}


def replay_study(data: dict, orders: int, stopper_params: dict) -> dict:
    curves, valid, test = data["curves"], data["valid"], data["test"]
    rows = []
    for seed in range(orders):
        order = np.random.default_rng(seed).permutation(len(valid))
        base = replay(curves, order, None)
        fast = replay(curves, order, stopper_params, keys=data["keys"])
        rows.append({"seed": seed, "epochs_ratio": fast["epochs"] / base["epochs"], "stopped": fast["stopped"],
                     "best_valid_without": float(valid[base["best"]]), "best_valid_with": float(valid[fast["best"]]),
                     "gap_valid": float(valid[base["best"]] - valid[fast["best"]]),
                     "gap_test": float(test[base["best"]] - test[fast["best"]])})
    ratio = np.array([r["epochs_ratio"] for r in rows])
    gap = np.array([r["gap_valid"] for r in rows])
    return {"orders": orders, "candidates": len(valid), "stopper": stopper_params,
            "epochs_ratio_mean": float(ratio.mean()), "epochs_ratio_max": float(ratio.max()),
            "gap_valid_mean": float(gap.mean()), "gap_valid_max": float(gap.max()),
            "best_kept_fraction": float(np.mean(gap <= 1e-9)),
            "gap_test_mean": float(np.mean([r["gap_test"] for r in rows])),
            "met": bool(ratio.mean() <= TARGET_EPOCHS and gap.mean() <= TARGET_GAP), "rows": rows}


def real_run(run_dir: Path, out: Path, stopper_params: dict) -> dict:
    """Re-run ``run_dir``'s configuration with srm-stop and compare with the stored run."""
    import tomllib

    import nascore
    from nascore.rundir import read_evaluations

    config = tomllib.loads((run_dir / "config.toml").read_text())
    config["name"] = config["name"] + "-srm-stop"
    config["stopper"] = {"name": "srm-stop", **stopper_params}
    base = [e for e in read_evaluations(run_dir)]
    t = time.time()
    result = nascore.run(config, out=out)
    wall = time.time() - t
    fast = result["evaluations"]
    best = lambda evs: max(evs, key=lambda e: e["metrics"]["valid_accuracy"])  # noqa: E731
    b0 = best([e.to_json() for e in base if e.status == "ok"])
    b1 = best([e for e in fast if e["status"] == "ok"])
    ep0 = sum(len(e.curve) for e in base)
    ep1 = sum(len(e["curve"]) for e in fast)
    secs0 = sum(e.metrics.get("train_seconds", 0) for e in base)
    secs1 = sum(e["metrics"].get("train_seconds", 0) for e in fast)
    return {"run": run_dir.name, "candidates": len(fast), "stopped": result["counts"]["stopped"],
            "epochs_without": ep0, "epochs_with": ep1, "epochs_ratio": ep1 / ep0,
            "train_seconds_without": secs0, "train_seconds_with": secs1, "train_seconds_ratio": secs1 / secs0,
            "wall_seconds_with": wall,
            "best_without": {"key": b0["key"], "valid": b0["metrics"]["valid_accuracy"], "test": b0["metrics"]["test_accuracy"]},
            "best_with": {"key": b1["key"], "valid": b1["metrics"]["valid_accuracy"], "test": b1["metrics"]["test_accuracy"]},
            "gap_valid": b0["metrics"]["valid_accuracy"] - b1["metrics"]["valid_accuracy"],
            "same_best": b0["key"] == b1["key"]}


def replay_check(run_dir: Path, real_dir: Path, stopper_params: dict) -> dict:
    """Replay ``run_dir``'s stored curves in its order with srm-stop and compare with
    the real run in ``real_dir``: the replay is exact when training is deterministic."""
    from nascore.rundir import read_evaluations

    base = read_evaluations(run_dir)
    real = {e.key: e for e in read_evaluations(real_dir)}
    curves = np.array([[p["valid_accuracy"] for p in e.curve] for e in base])
    rep = replay(curves, np.arange(len(base)), stopper_params, keys=[e.key for e in base])
    identical = sum(np.allclose([p["valid_accuracy"] for p in real[e.key].curve], curves[i, :len(real[e.key].curve)])
                    for i, e in enumerate(base) if e.key in real)
    return {"replay_epochs": rep["epochs"], "real_epochs": sum(len(e.curve) for e in real.values()),
            "replay_stopped": rep["stopped"], "real_stopped": sum(e.status == "stopped" for e in real.values()),
            "real_curves_that_are_prefixes_of_the_stored_ones": int(identical), "candidates": len(base)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="80 curves, 2 orders, one variant, no real run")
    ap.add_argument("--curves", type=Path, default=None, help="learning-curve JSON (default: ngram_srm_curves.json)")
    ap.add_argument("--orders", type=int, default=6, help="random search orders replayed")
    ap.add_argument("--real", default="digits-e20-lr0.05", help="learning-curve run re-run with srm-stop")
    ap.add_argument("--no-real", action="store_true", help="skip the real run")
    ap.add_argument("--real-only", action="store_true",
                    help="only redo the real run and its replay check in an existing results file")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from nascore_ngram_srm.stopper import SRMEarlyStopping

    defaults = SRMEarlyStopping()
    params = {k: getattr(defaults, k) for k in ("fraction", "confidence", "min_curves", "repeats", "transform")}
    run_dir = RESULTS / "ngram_srm_curves" / args.real
    target = RESULTS / "ngram_srm_curves" / f"{args.real}-srm-stop"
    if args.real_only:
        path = RESULTS / "ngram_srm_acceleration.json"
        out = json.loads(path.read_text())
        if target.exists():
            import shutil

            shutil.rmtree(target)
        out["real"] = real_run(run_dir, target, params)
        out["replay_check"] = replay_check(run_dir, target, params)
        path.write_text(json.dumps(out, indent=1))
        print(json.dumps({"real": out["real"], "replay_check": out["replay_check"]}, indent=1))
        return
    args.curves = args.curves or curve_set_path(args.quick)
    data = load(args.curves)
    if args.quick:  # the first 80 curves (one run), 2 search orders
        data = {k: (v[:80] if k != "meta" else v) for k, v in data.items()}
    out = {"benchmark": "ngram_srm_acceleration", "quick": args.quick, "curves": args.curves.name,
           "targets": {"epochs_ratio": TARGET_EPOCHS, "best_gap": TARGET_GAP}}
    out["replay"] = replay_study(data, 2 if args.quick else args.orders, params)
    old = {"fraction": 0.25, "confidence": 0.9, "repeats": 3, "transform": "none"}  # the first defaults
    sweep = [{"repeats": 1}] if args.quick else [
        old, {**old, "transform": "log-error"}, {"confidence": 0.998}, {"fraction": 0.15, "repeats": 6},
        {"fraction": 0.2, "repeats": 4},
        {"fraction": 0.25, "repeats": 1, "transform": "none", "confidence": 0.9}]
    # the last one is the paper's single check at 25% with the earlier confidence
    out["replay_variants"] = [{k: v for k, v in replay_study(data, 2 if args.quick else 3, {**params, **change}).items()
                               if k != "rows"} for change in sweep]
    print(json.dumps({k: v for k, v in out["replay"].items() if k != "rows"}, indent=1), flush=True)
    if not (args.quick or args.no_real):
        if target.exists():
            import shutil

            shutil.rmtree(target)
        out["real"] = real_run(run_dir, target, params)
        out["replay_check"] = replay_check(run_dir, target, params)
        print(json.dumps(out["real"], indent=1))
    name = "ngram_srm_acceleration_quick.json" if args.quick else "ngram_srm_acceleration.json"
    (RESULTS / name).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
