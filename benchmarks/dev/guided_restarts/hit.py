"""First-climb statistics (dev seeds): fraction of first climbs ending at the table optimum, queries used."""
import sys
import json
import statistics
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import peers_nb201 as P
import nascore
from nascore.builtin import guided as G
ds = sys.argv[1]; seeds = range(int(sys.argv[2]), int(sys.argv[3])); ch = json.loads(sys.argv[4])
T = P.Table(); opt = max(T.table.column(f"{ds}_valid"))
orig = G.GuidedLocalSearch._climb; REC = []
def climb(self, ctx, current):
    h0 = len(ctx.history); orig(self, ctx, current)
    seg = ctx.history[h0:]; best = max([current] + list(seg), key=lambda e: G._score(e, ctx.metric))
    REC.append((h0, G._score(best, ctx.metric), len(seg), ctx.remaining <= 0))
G.GuidedLocalSearch._climb = climb
first = []
for s in seeds:
    REC.clear(); c = P.nascore_config("nb201", ds, 300, s); c["optimizer"].update(ch)
    nascore.run(c, quiet=True, write_files=False)
    first.append(REC[0]); 
hits = [abs(r[1] - opt) < 1e-6 for r in first]
print(ch, f"first-climb hit {sum(hits)}/{len(hits)}, mean end {statistics.mean(r[1] for r in first):.3f}, queries {statistics.mean(r[2] for r in first):.1f}")
