"""Learning-curve dataset of the N-gram/SRM benchmarks (issue 4, item 5).

Trains random ``metaqnn`` architectures on ``digits`` (or MNIST from $NASCORE_DATA) for
T epochs with the core trainer: one nascore run per initial learning rate (so the HP
feature set varies), each stored as a run directory under
``benchmarks/results/ngram_srm_curves/`` and resumed when it exists (nothing trained
twice).  The curves are then exported to ``benchmarks/results/ngram_srm_curves.json``,
which the other ``ngram_srm_*`` benchmarks read.

    python benchmarks/ngram_srm_curves.py [--quick] [--dataset digits|mnist] [--archs N] [--epochs T]

Each run can be killed at any time and the script started again: it resumes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def run_config(dataset: str, lr: float, seed: int, archs: int, epochs: int, width: float, subset) -> dict:
    task = {"dataset": dataset, "seed": 0}
    if subset:
        task["subset"] = subset
    return {
        "name": f"curves-{dataset}-lr{lr:g}", "seed": seed, "budget": archs, "device": "cpu",
        "task": task,
        "space": {"name": "metaqnn", "width": width},
        "optimizer": {"name": "random-search"},
        "evaluator": {"name": "train", "epochs": epochs, "lr": lr, "batch_size": 128, "measure_latency": False,
                      "device": "cpu"},
        "executor": {"name": "local"},
    }


def build_run(config: dict, out: Path) -> None:
    """Start, resume or skip (finished) one run directory."""
    import nascore

    if (out / "result.json").is_file():
        return
    resume = (out / "run.sqlite").is_file()
    t = time.time()
    nascore.run(config if not resume else None, out=out, resume=resume)
    print(f"{out.name}: done in {time.time() - t:.0f}s", flush=True)


def export(run_dirs: list[Path], path: Path) -> dict:
    """Curves of every finished evaluation, with tokens, cost and training hyperparameters."""
    import nascore
    from nascore.rundir import read_config, read_evaluations

    rows = []
    for run_dir in run_dirs:
        cfg = read_config(run_dir)
        space_cfg = dict(cfg["space"])
        space = nascore.create("search_space", space_cfg.pop("name"), **space_cfg)
        ev_cfg = cfg["evaluator"]
        # by key: the set of curves, independent of the order the executor finished them in
        for ev in sorted(read_evaluations(run_dir), key=lambda e: e.key):
            if ev.status != "ok":
                continue
            arch = space.make(ev.genome)
            rows.append({
                "run": run_dir.name, "key": ev.key, "arch": space.to_string(arch), "tokens": space.tokens(arch),
                "layers": space.num_layers(arch), "params": ev.metrics.get("params"), "flops": ev.metrics.get("flops"),
                "lr": ev_cfg["lr"], "weight_decay": ev_cfg["weight_decay"], "momentum": ev_cfg["momentum"],
                "curve": [p["valid_accuracy"] for p in ev.curve],
                "valid_accuracy": ev.metrics["valid_accuracy"], "test_accuracy": ev.metrics.get("test_accuracy"),
                "train_seconds": ev.metrics.get("train_seconds"),
            })
    data = {"runs": [r.name for r in run_dirs], "space": cfg["space"], "task": cfg["task"],
            "epochs": cfg["evaluator"]["epochs"], "count": len(rows), "evaluations": rows}
    return data


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="4 architectures, 4 epochs, one learning rate")
    ap.add_argument("--dataset", default="digits", choices=["digits", "mnist"])
    ap.add_argument("--archs", type=int, default=80, help="architectures per learning rate")
    ap.add_argument("--epochs", type=int, default=20, help="T: epochs per architecture (paper: 20)")
    ap.add_argument("--lrs", default="0.02,0.05,0.1", help="initial learning rates, one run each")
    ap.add_argument("--width", type=float, default=0.0625, help="metaqnn width factor (1/16: 4-32 filters)")
    ap.add_argument("--subset", type=int, default=None, help="train samples kept (MNIST: e.g. 2000)")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    lrs = [float(x) for x in args.lrs.split(",")]
    archs, epochs = args.archs, args.epochs
    if args.quick:
        lrs, archs, epochs = lrs[:1], 4, 4
    import tempfile

    from _common import checkpoint, results_dir, write_result

    tag = "quick" if args.quick else f"{args.dataset}-e{epochs}"
    configs = {f"{tag}-lr{lr:g}": run_config(args.dataset, lr, i, archs, epochs, args.width, args.subset)
               for i, lr in enumerate(lrs)}
    # run directories: a fresh folder for --quick, else one keyed by commit and configs
    # (a killed build resumes; other code or settings never reuse them)
    runs = Path(tempfile.mkdtemp(prefix="srm-curves-")) if args.quick else \
        checkpoint("ngram_srm_curves", configs).with_suffix("")
    run_dirs = []
    for name, config in configs.items():
        build_run(config, runs / name)
        run_dirs.append(runs / name)
    name = "ngram_srm_curves_quick.json" if args.quick else f"ngram_srm_curves{'' if args.dataset == 'digits' else '_' + args.dataset}.json"
    data = export(run_dirs, results_dir() / name)
    data["runs"] = [p.name for p in run_dirs]
    write_result("ngram_srm_curves", data, quick=args.quick, path=results_dir() / name, settings=configs,
                 seeds=list(range(len(lrs))), tuned_on=None)
    print(f"{data['count']} curves of {epochs} epochs -> {results_dir() / name}")


if __name__ == "__main__":
    main()
