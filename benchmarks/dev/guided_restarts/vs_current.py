"""Paired variant-minus-current (examples/nb201.toml) over dev seeds; best valid."""
import sys
import json
import statistics
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import tune as T
seeds = list(range(int(sys.argv[1]), int(sys.argv[2])))
variants = json.loads(sys.argv[3])
base = {(ds, b): [v for v, _ in T.variant({}, ds, b, seeds)] for ds in T.DS for b in T.BUDGETS}
for name, ch in variants.items():
    row = []
    for ds in T.DS:
        for b in T.BUDGETS:
            res = [v for v, _ in T.variant(ch, ds, b, seeds)]
            d = [a - c for a, c in zip(res, base[(ds, b)])]
            m = statistics.mean(d); se = statistics.stdev(d) / len(d) ** 0.5
            row.append(f"{ds[:3]}{ds[5:]}/{b}: {m:+.3f} z{(m / se if se else 0):+.1f}")
    print(f"{name:18s}", " | ".join(row), flush=True)
