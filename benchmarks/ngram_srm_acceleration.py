"""srm-stop's defaults: chosen on a development curve set, reported on another.

A *replay* is a random search over a learning-curve set: the set's architectures in a
random order (the replay's seed), in batches of 4; with ``srm-stop`` each candidate's
curve is cut where the stopper says so.  Training is deterministic given the run seed, so
a cut curve is exactly what training would have produced.  Per replay we record the share
of the epochs trained (``epochs_ratio``) and the valid accuracy of the best *completed*
candidate (what the search returns).

* **Choice** (development set, ``ngram_srm_curves.json``: 240 curves of 20 epochs on
  digits, replay orders 0..2): every setting of ``GRID``; the chosen setting has the
  smallest mean ``epochs_ratio`` among those whose mean loss of best valid accuracy
  against the search without stopping is at most ``MAX_GAP`` (0.5 points).
* **Report** (``ngram_srm_curves_mnist.json``: 48 curves of 8 epochs on MNIST, never used
  for any choice; orders 100..129): arms ``no-stop``, ``first-defaults`` (the stopper's
  first defaults), ``plugin-defaults`` (the plugin's defaults at this commit) and
  ``chosen``, paired by order: ``arms``/``comparisons`` in the study shape.

The real-run comparison (a digits search re-run with the stopper) trains networks: it is
``--real`` only and not part of the committed file.

    python benchmarks/ngram_srm_acceleration.py [--quick] [--real]

Writes ``benchmarks/results/ngram_srm_acceleration.json`` (``_quick`` with --quick).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


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


#: the stopper's first defaults (before any tuning)
FIRST = {"fraction": 0.25, "confidence": 0.9, "repeats": 3, "transform": "none"}
#: settings compared on the development set (the rest of the parameters at their defaults)
GRID = {
    "first-defaults": FIRST,
    "25% x3, 0.999, log-error": {"fraction": 0.25, "repeats": 3, "confidence": 0.999, "transform": "log-error"},
    "25% x3, 0.99, log-error": {"fraction": 0.25, "repeats": 3, "confidence": 0.99, "transform": "log-error"},
    "25% x1, 0.999, log-error": {"fraction": 0.25, "repeats": 1, "confidence": 0.999, "transform": "log-error"},
    "15% x6, 0.999, log-error": {"fraction": 0.15, "repeats": 6, "confidence": 0.999, "transform": "log-error"},
}
MAX_GAP = 0.5
DEV_ORDERS = list(range(3))
REPORT_ORDERS = list(range(100, 130))
#: replays are deterministic: numbers must be equal
CHECK = {"rtol": 1e-9}


def _stopper_defaults() -> dict:
    from nascore_ngram_srm.stopper import SRMEarlyStopping

    d = SRMEarlyStopping()
    return {k: getattr(d, k) for k in ("fraction", "confidence", "min_curves", "repeats", "transform")}


_MEMO: dict = {}


def per_order(data: dict, orders, params: dict | None) -> dict:
    """epochs_ratio and best valid of the returned candidate for each replay order
    (memoized: arms with equal settings share their replays)."""
    key = (id(data), tuple(orders), json.dumps(params, sort_keys=True))
    if key not in _MEMO:
        _MEMO[key] = _per_order(data, orders, params)
    return _MEMO[key]


def _one_order(args) -> tuple[float, float]:
    """One replay order: (epochs_ratio, best valid of the returned candidate)."""
    curves, valid, keys, seed, params = args
    order = np.random.default_rng(seed).permutation(len(valid))
    base_epochs = len(order) * curves.shape[1]
    if params is None:
        return 1.0, float(valid[int(order[np.argmax(curves[order, -1])])])
    import torch

    torch.set_num_threads(1)
    r = replay(curves, order, params, keys=keys)
    return r["epochs"] / base_epochs, float(valid[r["best"]])


#: worker processes for the replays (--workers); the machine is shared, keep it small
POOL = None


def _per_order(data: dict, orders, params: dict | None) -> dict:
    jobs = [(data["curves"], data["valid"], data["keys"], seed, params) for seed in orders]
    out = POOL.map(_one_order, jobs) if POOL is not None and params is not None else [_one_order(j) for j in jobs]
    return {"epochs_ratio": [o[0] for o in out], "best_valid": [o[1] for o in out]}


def choose(dev: dict, orders) -> tuple[str, dict]:
    from nascore.evidence import summarize

    base = per_order(dev, orders, None)
    table = {}
    for name, change in GRID.items():
        r = per_order(dev, orders, {**_stopper_defaults(), **change})
        gap = [b - w for b, w in zip(base["best_valid"], r["best_valid"])]
        table[name] = {"setting": change, "epochs_ratio": summarize(r["epochs_ratio"]), "gap_valid": summarize(gap),
                       "best_kept_share": float(np.mean(np.array(gap) <= 1e-9))}
        print(f"dev {name:28s} epochs {table[name]['epochs_ratio']['mean']:.3f} gap {table[name]['gap_valid']['mean']:.3f}",
              flush=True)
    ok = {n: r for n, r in table.items() if r["gap_valid"]["mean"] <= MAX_GAP}
    chosen = min(ok or table, key=lambda n: (table[n]["epochs_ratio"]["mean"], table[n]["gap_valid"]["mean"]))
    return chosen, table


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="development: 80 curves, 2 orders, 2 settings; report: 3 orders")
    ap.add_argument("--real", action="store_true", help="also re-run a digits search with the chosen stopper "
                                                         "(trains networks; written to a separate file)")
    ap.add_argument("--real-run", default="digits-e20-lr0.05", help="learning-curve run re-run with srm-stop")
    ap.add_argument("--workers", type=int, default=1, help="processes for the replays (results do not depend on it)")
    args = ap.parse_args(argv)
    global POOL
    if args.workers > 1:
        import multiprocessing as mp

        POOL = mp.get_context("spawn").Pool(args.workers)
    import torch

    torch.set_num_threads(1)
    from _common import write_result
    from nascore.evidence import comparisons, summarize

    global GRID
    dev = load(RESULTS / "ngram_srm_curves.json")
    rep = load(RESULTS / "ngram_srm_curves_mnist.json")
    dev_orders, rep_orders = DEV_ORDERS, REPORT_ORDERS
    if args.quick:
        dev = {k: (v[:80] if k != "meta" else v) for k, v in dev.items()}
        dev_orders, rep_orders = DEV_ORDERS[:2], REPORT_ORDERS[:3]
        GRID = {k: GRID[k] for k in ("first-defaults", "25% x3, 0.999, log-error")}
    chosen, table = choose(dev, dev_orders)
    defaults = _stopper_defaults()
    arms_params = {"no-stop": None, "first-defaults": {**defaults, **FIRST},
                   "plugin-defaults": defaults, "chosen": {**defaults, **GRID[chosen]}}
    per = {a: per_order(rep, rep_orders, p) for a, p in arms_params.items()}
    for a, r in per.items():
        print(f"report {a:16s} epochs {np.mean(r['epochs_ratio']):.3f} best valid {np.mean(r['best_valid']):.3f}",
              flush=True)
    metrics = {m: {a: summarize(r[m]) for a, r in per.items()} for m in ("epochs_ratio", "best_valid")}
    comps = []
    for m in ("epochs_ratio", "best_valid"):
        vals = {a: r[m] for a, r in per.items()}
        comps += comparisons({a: vals[a] for a in ("first-defaults", "plugin-defaults", "chosen")},
                             "first-defaults", m)
        comps += [c for c in comparisons(vals, "no-stop", m) if c["arm"] != "no-stop"]
    changed = GRID[chosen] != {k: defaults[k] for k in GRID[chosen]}
    data = {
        "title": "srm-stop: defaults chosen on the digits curve set, reported on the MNIST curve set",
        "description": (f"Choice on {len(dev['valid'])} development curves (ngram_srm_curves.json, orders "
                        f"{dev_orders[0]}..{dev_orders[-1]}): the smallest mean epochs_ratio with mean best-valid "
                        f"loss <= {MAX_GAP}. Report on the {len(rep['valid'])} MNIST curves "
                        f"(ngram_srm_curves_mnist.json, never used for a choice), {len(rep_orders)} replay orders "
                        f"{rep_orders[0]}..{rep_orders[-1]}, paired by order. epochs_ratio: share of the epochs "
                        "trained; best_valid: valid accuracy of the best completed candidate."),
        "chosen": {"name": chosen, "setting": GRID[chosen], "differs_from_plugin_defaults": changed},
        "development": table,
        "arms": metrics["epochs_ratio"], "metrics": metrics, "comparisons": comps,
        "summary": [{"arm": a, "epochs_ratio": f"{metrics['epochs_ratio'][a]['mean']:.3f} ± "
                                               f"{metrics['epochs_ratio'][a]['se'] or 0:.3f}",
                     "best valid": f"{metrics['best_valid'][a]['mean']:.3f} ± {metrics['best_valid'][a]['se'] or 0:.3f}",
                     "setting": arms_params[a]} for a in per],
        "per_order": per,
    }
    settings = {"grid": GRID, "max_gap": MAX_GAP, "batch": 4, "development_curves": "ngram_srm_curves.json"
                + (" (first 80)" if args.quick else ""), "report_curves": "ngram_srm_curves_mnist.json",
                "plugin_defaults": defaults}
    write_result("ngram_srm_acceleration", data, quick=args.quick, settings=settings,
                 seeds={"development_orders": dev_orders, "report_orders": rep_orders},
                 tuned_on=f"stopper setting chosen here on ngram_srm_curves.json, orders {dev_orders}; "
                          "reported on ngram_srm_curves_mnist.json, disjoint")
    if args.real and not args.quick:
        import shutil
        import tempfile

        run_dir = RESULTS / "ngram_srm_curves" / args.real_run
        target = Path(tempfile.mkdtemp(prefix="srm-real-")) / f"{args.real_run}-srm-stop"
        real = {"real": real_run(run_dir, target, arms_params["chosen"]),
                "replay_check": replay_check(run_dir, target, arms_params["chosen"])}
        shutil.rmtree(target.parent, ignore_errors=True)
        write_result("ngram_srm_acceleration_real", real, quick=False, settings={**settings, "run": args.real_run},
                     seeds=[], tuned_on="stopper setting chosen on ngram_srm_curves.json (see "
                                        "ngram_srm_acceleration.json)")


if __name__ == "__main__":
    main()
