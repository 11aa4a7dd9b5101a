"""Per-step trace of guided-local-search climbs on given seeds."""
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import peers_nb201 as P
import nascore
from nascore.builtin import guided as G
ds, budget = sys.argv[1], int(sys.argv[2])
seeds = [int(s) for s in sys.argv[3].split(",")]
space = nascore.create("search_space", "nb201")
T = P.Table()
best_ops = max(T.row, key=lambda o: T.lookup(o, ds)[0])
def dist(a, b): return sum(x != y for x, y in zip(a, b))
orig_climb = G.GuidedLocalSearch._climb
def climb(self, ctx, current):
    h0 = len(ctx.history)
    orig_climb(self, ctx, current)
    seg = ctx.history[h0:]
    cur = G._score(current, ctx.metric); steps = []; n = 0
    path = [tuple(space.tokens(current.arch))]
    for e in seg:
        n += 1
        if G._score(e, ctx.metric) > cur:
            cur = G._score(e, ctx.metric); steps.append(n); n = 0; path.append(tuple(space.tokens(e.arch)))
    print(f"   climb@{h0}: start {G._score(current, ctx.metric):.2f} (d*={dist(path[0], best_ops)}) -> {cur:.2f} "
          f"(d*={dist(path[-1], best_ops)}) {path[-1]}; queries per improving step {steps}, "
          f"then {n} failing (verification){' [budget cut]' if ctx.remaining <= 0 else ''}")
G.GuidedLocalSearch._climb = climb
print("optimum", best_ops, T.lookup(best_ops, ds)[0])
for s in seeds:
    c = P.nascore_config("nb201", ds, budget, s)
    if len(sys.argv) > 4: c["optimizer"].update(eval(sys.argv[4]))
    r = nascore.run(c, quiet=True, write_files=False)
    print(f"seed {s} best {r['best']['metrics']['valid_accuracy']:.2f}")
