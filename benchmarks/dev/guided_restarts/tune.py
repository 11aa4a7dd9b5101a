"""Dev-seed tuning of guided-local-search against TPE (seeds 1000-1029 only)."""
import json, sys, statistics, time, copy, os
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import peers_nb201 as P
import nascore
SEEDS = list(range(int(os.environ.get("SEED0", 1000)), int(os.environ.get("SEED0", 1000)) + 30))
CACHE = Path(os.environ.get("CACHE", Path(__file__).resolve().parent / "tpe_1000.json"))
DS = ("cifar10", "cifar100", "imagenet16")
BUDGETS = (50, 100, 200)

def tpe_dev(budgets=BUDGETS):
    cache = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    table = None
    for ds in DS:
        for b in budgets:
            k = f"{ds}/{b}"
            if k in cache: continue
            table = table or P.Table()
            vals = []
            for s in SEEDS:
                v, t, c = P.run_optuna("tpe", table, ds, b, s)
                vals.append([v, t, c])
            cache[k] = vals
            CACHE.write_text(json.dumps(cache)); print("tpe", k, statistics.mean(v[0] for v in vals), flush=True)
    return cache

def variant(changes: dict, ds, b, seeds=SEEDS):
    out = []
    for s in seeds:
        c = P.nascore_config("nb201", ds, b, s)
        opt = dict(c["optimizer"]); opt.update(changes.get("optimizer", {}))
        c["optimizer"] = opt
        for k, v in changes.items():
            if k != "optimizer": c[k] = v
        t = time.process_time(); r = nascore.run(c, quiet=True, write_files=False); cpu = time.process_time() - t
        assert r["budget"]["used"] == b
        out.append((r["best"]["metrics"]["valid_accuracy"], cpu))
    return out

def z(diffs):
    m = statistics.mean(diffs); se = statistics.stdev(diffs) / len(diffs) ** 0.5
    return m, (m / se if se > 0 else float("inf"))

if __name__ == "__main__":
    budgets = [int(x) for x in os.environ.get("BUDGETS", "50,100,200").split(",")]
    cache = tpe_dev(budgets)
    variants = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {"current": {}}
    BASE = {"cifar10": 1.6, "cifar100": 1.5, "imagenet16": -0.6}  # current example's dev z at 100 (rounded, 23:31 run)
    for name, ch in variants.items():
        row = []; zs = {}
        for ds in DS:
            for b in budgets:
                res = variant(ch, ds, b)
                tpe = [v[0] for v in cache[f"{ds}/{b}"]]
                m, zz = z([a[0] - t for a, t in zip(res, tpe)])
                zs[(ds, b)] = zz
                row.append(f"{ds[:3]}{ds[5:]}/{b}: {m:+.3f} z{zz:+.1f}")
        ok = (all(v > -2 for v in zs.values()) and all(zs[(d, 100)] >= BASE[d] for d in DS) and zs[("cifar10", 100)] >= 2) if len(budgets) == 3 else None
        print(f"{name:28s}", " | ".join(row), "PASS" if ok else ("fail" if ok is False else ""), flush=True)
        with open(Path(__file__).resolve().parent / "tune_log.jsonl", "a") as f:
            f.write(json.dumps({"name": name, "changes": ch, "budgets": budgets, "z": {f"{d}/{b}": v for (d, b), v in zs.items()}, "pass": ok}) + "\n")
