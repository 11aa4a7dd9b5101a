"""Pooled over dev seeds 1000-1089 (three TPE caches): z vs TPE for current and variant, and variant - current."""
import sys
import json
import statistics
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import tune as T
caches = {s: Path(__file__).resolve().parent / f"tpe_{s}.json" for s in (1000, 1030, 1060)}
variants = json.loads(sys.argv[1])
def z(d):
    m = statistics.mean(d); se = statistics.stdev(d) / len(d) ** 0.5
    return m, (m / se if se else 0.0)
out = {}
for ds in T.DS:
    for b in T.BUDGETS:
        tpe = []
        for s0, f in caches.items():
            tpe += [v[0] for v in json.load(open(f))[f"{ds}/{b}"]]
        seeds = list(range(1000, 1090))
        res = {n: [v for v, _ in T.variant(ch, ds, b, seeds)] for n, ch in variants.items()}
        for n, r in res.items():
            out.setdefault(n, []).append(f"{ds[:3]}{ds[5:]}/{b} {z([a - t for a, t in zip(r, tpe)])[0]:+.3f} z{z([a - t for a, t in zip(r, tpe)])[1]:+.1f}")
        names = list(variants)
        for n in names[1:]:
            out.setdefault(n + "-vs-" + names[0], []).append(f"{ds[:3]}{ds[5:]}/{b} {z([a - c for a, c in zip(res[n], res[names[0]])])[0]:+.3f} z{z([a - c for a, c in zip(res[n], res[names[0]])])[1]:+.1f}")
for n, row in out.items():
    print(f"{n:30s}", " | ".join(row))
