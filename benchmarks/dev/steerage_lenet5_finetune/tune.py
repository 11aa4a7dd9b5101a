"""Tuning seed 10 (disjoint from the reported 0-2): the GS+LS network's final fine-tuning
length chosen on VALIDATION (test recorded, never used)."""
import os, sys, json, time, copy, argparse
for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"): os.environ[v] = "1"
sys.path.insert(0, os.path.join(os.getcwd(), "benchmarks"))
import torch
from threadpoolctl import threadpool_limits
torch.set_num_threads(1); threadpool_limits(1)
import nascore, attrs
import steerage_lenet5_mnist as L
from nascore_steerage.nest import NeST
from nascore_steerage.scann import SCANN
from nascore_steerage.layers import model_cost

a = argparse.Namespace(**L.FULL, seed=int(sys.argv[1]), fc_reading="flatten")
lengths = [int(x) for x in sys.argv[2].split(",")]
out = {"seed": a.seed, "settings": dict(L.FULL), "lengths": lengths}
t0 = time.time()
task = L.full_task(a)
space = nascore.create("search_space", "lenet5", input_size=28, image_sizes=[28], fc_reading="flatten")
best, cost = L.global_search(28, a)
arch = space.make(best["genome"]); torch.manual_seed(a.seed); model = space.build(arch, task)
out["gs"] = {"tokens": best["tokens"], **L.train_full(model, task, a.epochs, a.seed)}
print("GS", out["gs"]["valid_accuracy"], out["gs"]["test_accuracy"], out["gs"]["params"], round(time.time() - t0), flush=True)
ctx = L.Context(a.seed, space)
for comp in (SCANN(scheme="C", iterations=a.scann_iterations, epochs=1, lr=a.ls_lr, growth_ratio=0.05, max_params=a.max_params, final_epochs=0),
             NeST(iterations=a.nest_iterations, epochs=1, lr=a.ls_lr, prune_ratio=0.3, area_ratio=0.3, candidates=8, maps=1, max_params=a.max_params, final_epochs=0)):
    res = comp.compress(arch, model, task, ctx); model = res.model
    print(type(comp).__name__, res.after, res.info["chosen_step"], round(time.time() - t0), flush=True)
out["ls_before_finetune"] = res.after
tr = ctx.trainer(lr=a.ls_lr)
out["finetune"] = {}
for E in lengths:
    m = copy.deepcopy(model)
    attrs.evolve(tr, epochs=E).fit(m, task, seed=a.seed + 10_000)
    r = {"valid_accuracy": tr.accuracy(m, task.valid), "test_accuracy": tr.accuracy(m, task.test), **model_cost(m, task.input_shape)}
    out["finetune"][E] = r
    print("finetune", E, r, round(time.time() - t0), flush=True)
json.dump(out, open(f"/tmp/s5b/tune_lenet_{a.seed}.json", "w"), indent=1, default=str)
