"""TNAS's claim in weight sharing, paired by seed: the learned sampler against uniform
sampling in one-shot (SPOS + evolution) and in gradient search, on digits and MNIST.

Arms (``nascore.run`` with the ``train`` evaluator, budget 1: the chosen architecture is
retrained from scratch and that retraining's accuracies are the arm's values):

* ``oneshot_tnas``: ``tnas-oneshot``, paths from Eq. 11's mixture, evolution seeded by
  ``p_theta``;  ``oneshot_uniform``: the same optimizer with ``path_sampler='uniform'``
  (SPOS: uniform paths, uniformly seeded evolution);
* ``gradient_tnas``: ``tnas-gradient`` (paths from ``p_theta``, Eq. 12);
  ``gradient_uniform``: the same with uniform paths and candidates.

The same run seed gives every arm the same supernet initialisation and batches; only the
paths differ.  Choice inside each search is by supernet validation accuracy; the
comparisons are on the retrained network's test accuracy (reported) and validation
accuracy.  Ranking quality: for each dataset one supernet per sampler (seed 0) scores
``n`` architectures drawn uniformly (seeded), which are also trained standalone with two
seeds; Kendall tau of supernet accuracy against mean standalone validation accuracy, and
of each against the number of convolution edges in the architecture (``conv_edges``).

    python benchmarks/tnas_oneshot_paired.py                 # digits, then MNIST, 5 seeds
    python benchmarks/tnas_oneshot_paired.py --datasets digits
    python benchmarks/tnas_oneshot_paired.py --partial       # write what the checkpoints have
    python benchmarks/tnas_oneshot_paired.py --quick

Each dataset is its own study with its own checkpoints and file, in the study shape:
digits writes ``benchmarks/results/tnas_oneshot_paired.json`` (``_quick``), any other
dataset ``tnas_oneshot_paired_<dataset>.json`` (``--name`` overrides it for a run of one
dataset).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import checkpoint, load_checkpoint, save_checkpoint, write_result  # noqa: E402

CHECK = {"bands": {"*accuracy*": 1e-6, "*mean*": 1e-6, "*se*": 1e-6, "*diff*": 1e-6, "*.z": 1e-4,
                   "*p_value*": 1e-6, "*tau*": 1e-6}}

SPACE = {"name": "nb201", "C": 4, "N": 1}
VAE = {"vae_layers": 1, "vae_steps": 30, "d_model": 32, "latent_dim": 8}
FULL = {
    "datasets": {"digits": {"dataset": "digits", "seed": 0},
                 "mnist": {"dataset": "mnist", "seed": 0, "subset": 2000, "eval_subset": 1000}},
    "space": SPACE,
    "evaluator": {"name": "train", "epochs": 6, "batch_size": 64, "lr": 0.05, "measure_latency": False},
    "supernet": {"epochs": 6, "batch_size": 64, "archs_per_round": 10, "round_steps": 10, **VAE},
    "oneshot": {"eps_inc": 0.1, "population": 12, "generations": 3, "top_k": 4},
    "gradient": {"vae_candidates": 20},
    "seeds": [0, 1, 2, 3, 4], "ranking": {"archs": 20, "seeds": [0, 1]},
}
QUICK = {
    "datasets": {"digits": {"dataset": "digits", "seed": 0, "subset": 200}},
    "space": SPACE,
    "evaluator": {"name": "train", "epochs": 1, "batch_size": 64, "lr": 0.05, "measure_latency": False},
    "supernet": {"epochs": 1, "batch_size": 64, "archs_per_round": 4, "round_steps": 2, "vae_layers": 1,
                 "vae_steps": 3, "d_model": 16, "latent_dim": 4},
    "oneshot": {"eps_inc": 0.5, "population": 4, "generations": 1, "top_k": 2},
    "gradient": {"vae_candidates": 2},
    "seeds": [0, 1], "ranking": {"archs": 4, "seeds": [0]},
}
ARMS = {"oneshot_tnas": ("tnas-oneshot", "tnas"), "oneshot_uniform": ("tnas-oneshot", "uniform"),
        "gradient_tnas": ("tnas-gradient", "tnas"), "gradient_uniform": ("tnas-gradient", "uniform")}
PAIRS = [("oneshot_tnas", "oneshot_uniform"), ("gradient_tnas", "gradient_uniform")]


def optimizer(spec: dict, arm: str) -> dict:
    name, sampler = ARMS[arm]
    own = spec["oneshot"] if name == "tnas-oneshot" else spec["gradient"]
    return {"name": name, "path_sampler": sampler, "measure_child_epoch": False, **spec["supernet"], **own}


def search(spec: dict, task: dict, arm: str, seed: int) -> dict:
    import nascore

    cfg = {"name": "tnas-oneshot-paired", "seed": seed, "budget": 1, "device": "cpu", "task": task,
           "space": spec["space"], "optimizer": optimizer(spec, arm), "evaluator": spec["evaluator"]}
    t0 = time.perf_counter()
    res = nascore.run(cfg, write_files=False)
    m = res["best"]["metrics"]
    return {"valid_accuracy": m["valid_accuracy"], "test_accuracy": m["test_accuracy"],
            "tokens": res["best"]["tokens"], "seconds": time.perf_counter() - t0}


def ranking(spec: dict, task_spec: dict, data: dict, key: str, ckpt) -> dict:
    """Kendall tau of each sampler's supernet accuracy against standalone accuracy."""
    import nascore
    from nascore.data import load_task
    from nascore.metrics import kendall_tau

    task = load_task(task_spec)
    space = _space(spec)
    rng = np.random.default_rng(2024)
    archs = []
    while len(archs) < spec["ranking"]["archs"]:
        a = space.sample(rng)
        if a.key not in {b.key for b in archs}:
            archs.append(a)
    out = data.setdefault("ranking", {}).setdefault(key, {"standalone": {}, "supernet": {}})
    evaluator = nascore.create("evaluator", spec["evaluator"]["name"], device="cpu",
                               **{k: v for k, v in spec["evaluator"].items() if k != "name"})
    for a in archs:
        for s in spec["ranking"]["seeds"]:
            k = f"{a.key}/{s}"
            if k not in out["standalone"]:
                out["standalone"][k] = evaluator.evaluate(a, space, task, seed=s).metrics["valid_accuracy"]
                save_checkpoint(ckpt, data)
    standalone = [float(np.mean([out["standalone"][f"{a.key}/{s}"] for s in spec["ranking"]["seeds"]]))
                  for a in archs]
    for sampler in ("tnas", "uniform"):
        if sampler not in out["supernet"]:
            out["supernet"][sampler] = supernet_scores(spec, space, task, sampler, archs)
            save_checkpoint(ckpt, data)
    taus = {s: kendall_tau(out["supernet"][s], standalone) for s in ("tnas", "uniform")}
    # why the supernet ranks as it does: how each ranking follows the number of edges that
    # carry a convolution (the other ops -- skip, pooling, none -- have no weights to share)
    convs = [sum("conv" in str(op) for op in a.genome.values()) for a in archs]
    by_convs = {"standalone": kendall_tau(convs, standalone),
                **{f"supernet_{s}": kendall_tau(convs, out["supernet"][s]) for s in ("tnas", "uniform")}}
    return {"archs": [a.key for a in archs], "standalone_valid": standalone,
            "supernet_valid": out["supernet"], "kendall_tau": taus,
            "conv_edges": convs, "kendall_tau_conv_edges": by_convs}


def ranking_done(spec: dict, rdata: dict, ds: str) -> bool:
    r = rdata.get("ranking", {}).get(ds)
    return bool(r) and all(s in r["supernet"] for s in ("tnas", "uniform")) \
        and len(r["standalone"]) >= spec["ranking"]["archs"] * len(spec["ranking"]["seeds"])


def _space(spec):
    import nascore

    params = {k: v for k, v in spec["space"].items() if k != "name"}
    return nascore.create("search_space", spec["space"]["name"], **params)


def supernet_scores(spec, space, task, sampler_name: str, archs, seed: int = 0) -> list[float]:
    """Train a TNAS-OS supernet (its own rounds, sampler as in the arm) and score ``archs``
    with the shared weights on the whole validation split."""
    import nascore

    opt = nascore.create("optimizer", "tnas-oneshot", **{k: v for k, v in optimizer(
        spec, "oneshot_" + sampler_name).items() if k != "name"})
    ctx = types.SimpleNamespace(space=space, task=task, device="cpu", log=lambda msg: None,
                                progress=lambda n, label: contextlib.nullcontext(lambda *a: None))
    rng = np.random.default_rng(seed)
    trainer = opt.make_trainer(ctx, seed=int(rng.integers(2**31)))
    uniform = sampler_name == "uniform"
    sampler = opt.make_sampler(space, rng, eps_inc=0.0 if uniform else opt.eps_inc,
                               eps_init=0.0 if uniform else opt.eps_init)
    opt.train_supernet(ctx, trainer, sampler, rng)
    return [trainer.accuracy(a) for a in archs]


def analyse(spec: dict, data: dict) -> dict:
    from nascore.evidence import paired, summarize, verdict

    arms, comps = {}, []
    runs = data.get("runs", {})
    for ds in spec["datasets"]:
        for metric in ("test_accuracy", "valid_accuracy"):
            for a, b in PAIRS:
                seeds = [s for s in spec["seeds"] if f"{ds}/{a}/{s}" in runs and f"{ds}/{b}/{s}" in runs]
                va = [runs[f"{ds}/{a}/{s}"][metric] for s in seeds]
                vb = [runs[f"{ds}/{b}/{s}"][metric] for s in seeds]
                arms[f"{ds}/{a}/{metric}"] = summarize(va)
                arms[f"{ds}/{b}/{metric}"] = summarize(vb)
                c = {"arm": f"{ds}/{a}", "against": f"{ds}/{b}", "metric": metric, "seeds": seeds, **paired(va, vb)}
                c["verdict"] = verdict(c, min_n=5)
                comps.append(c)
    return {"arms": arms, "comparisons": comps}


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--datasets", nargs="+", default=None)
    parser.add_argument("--partial", action="store_true", help="run nothing; write from the checkpoints")
    parser.add_argument("--part", choices=["all", "searches", "ranking"], default="all",
                        help="run only the paired searches or only the ranking study (separate checkpoints, "
                             "so two processes can share the work)")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="the searches' checkpoint file (default: keyed by this commit and the settings)")
    parser.add_argument("--ranking-checkpoint", type=Path, default=None,
                        help="the ranking's checkpoint file (default: keyed by this commit and the settings)")
    parser.add_argument("--name", default=None,
                        help="result file name for a run of one dataset (default: tnas_oneshot_paired for "
                             "digits, tnas_oneshot_paired_<dataset> otherwise)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    spec = dict(QUICK if args.quick else FULL)
    datasets = args.datasets or list(spec["datasets"])
    if args.name and len(datasets) > 1:
        parser.error("--name needs exactly one dataset (--datasets D)")
    for ds in datasets:
        one = {**spec, "datasets": {ds: spec["datasets"][ds]}}
        study(one, args, args.name or ("tnas_oneshot_paired" if ds == "digits" else f"tnas_oneshot_paired_{ds}"))


def study(spec: dict, args, name: str) -> None:
    """The paired searches and the ranking of ``spec``'s datasets, written to ``name``."""
    ckpt = None if args.quick else (args.checkpoint or checkpoint("tnas_oneshot_paired", spec))
    rckpt = None if args.quick else (args.ranking_checkpoint or checkpoint("tnas_oneshot_paired_ranking", spec))
    data = load_checkpoint(ckpt, {})
    rdata = data if args.quick else load_checkpoint(rckpt, {})
    if not rdata.get("ranking") and data.get("ranking"):  # an older invocation kept both in one file
        rdata = {"ranking": data["ranking"]}
    runs = data.setdefault("runs", {})
    result = {"ranking": {}, "checkpoints": {"searches": None if ckpt is None else ckpt.name,
                                             "ranking": None if rckpt is None else rckpt.name}}
    for ds, task in spec["datasets"].items():
        if not args.partial and args.part in ("all", "searches"):
            # one comparison at a time (one-shot first), so a run cut short has whole pairs
            for arm, seed in [(arm, seed) for pair in PAIRS for seed in spec["seeds"] for arm in pair]:
                key = f"{ds}/{arm}/{seed}"
                if key not in runs:
                    runs[key] = search(spec, task, arm, seed)
                    save_checkpoint(ckpt, data)
                    print(f"{key}: test {runs[key]['test_accuracy']:.2f} valid {runs[key]['valid_accuracy']:.2f} "
                          f"({runs[key]['seconds']:.0f} s)", flush=True)
        if not args.partial and args.part in ("all", "ranking"):
            result["ranking"][ds] = ranking(spec, task, rdata, ds, rckpt)
            print(f"{ds} ranking: tau {result['ranking'][ds]['kendall_tau']}", flush=True)
        elif ranking_done(spec, rdata, ds):
            result["ranking"][ds] = ranking(spec, task, rdata, ds, None)
    result.update(analyse(spec, data))
    result["runs"] = runs
    result["complete"] = all(f"{ds}/{a}/{s}" in runs for ds in spec["datasets"] for a in ARMS for s in spec["seeds"]) \
        and set(result["ranking"]) == set(spec["datasets"])
    for c in result["comparisons"]:
        print(f"{c['arm']} vs {c['against']} {c['metric']}: n={c['n']} diff {c['diff_mean']} z {c['z']}")
    write_result(name, result, quick=args.quick, settings=spec, seeds=spec["seeds"],
                 # the VAE settings came from tnas_oneshot.py, retired (superseded by this study; in git
                 # history at commit 06bc3a686c)
                 tuned_on="nothing tuned here: tnas plugin defaults and tnas_oneshot.py's VAE settings")


if __name__ == "__main__":
    main()
