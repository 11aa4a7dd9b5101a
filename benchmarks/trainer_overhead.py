"""Overhead of nascore's Trainer over a hand-written minimal PyTorch loop.

Same model (same initial weights), same in-memory data, same epochs, optimizer and
cosine schedule, and both validate once per epoch (the learning curve).  The hand loop is
the least a user would write: seeded permutation, forward, cross-entropy, backward,
step; no loss bookkeeping.  Runs are interleaved (ABAB..., order alternating) and the
ratio of the median wall times trainer/hand is reported (and the same ratio of CPU times,
steadier on a shared machine); the target is <= 1.05.

    python benchmarks/trainer_overhead.py [--quick]

Writes ``benchmarks/results/trainer_overhead.json``.  Uses MNIST from $NASCORE_DATA
(a train subset), or scikit-learn's digits when MNIST is absent.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from nascore.data import load_task
from nascore.errors import DatasetNotFoundError
from nascore.training import Trainer

RESULTS = Path(__file__).resolve().parent / "results" / "trainer_overhead.json"
TARGET = 1.05


def small_cnn(shape, classes):
    c, h, w = shape
    return nn.Sequential(
        nn.Conv2d(c, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * (h // 4) * (w // 4), classes),
    )


def mlp(shape, classes):
    return nn.Sequential(nn.Linear(shape[0], 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, classes))


def hand_loop(model, task, cfg, seed):
    """The minimal in-memory loop: what the Trainer must not be slower than."""
    X, y, Xv, yv = task.train.X, task.train.y, task.valid.X, task.valid.y
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"],
                          weight_decay=cfg["weight_decay"])
    g = torch.Generator().manual_seed(seed)
    n, bs, epochs = len(y), cfg["batch_size"], cfg["epochs"]
    acc = None
    for epoch in range(epochs):
        for group in opt.param_groups:
            group["lr"] = 0.5 * cfg["lr"] * (1 + math.cos(math.pi * epoch / epochs))
        model.train()
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            loss = F.cross_entropy(model(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            correct = sum(int((model(Xv[i:i + 1024]).argmax(1) == yv[i:i + 1024]).sum())
                          for i in range(0, len(yv), 1024))
        acc = 100.0 * correct / len(yv)
    return acc


def trainer_run(model, task, cfg, seed):
    trainer = Trainer(optimizer="sgd", schedule="cosine", grad_clip=None, device="cpu",
                      eval_batch_size=1024, **cfg)
    return trainer.fit(model, task, seed=seed).curve[-1]["valid_accuracy"]


def timed(fn, make_model, task, cfg):
    """Wall and CPU seconds of one training run (CPU time is robust to other processes
    sharing the machine, since torch runs single-threaded here)."""
    torch.manual_seed(0)
    model = make_model()
    t0, c0 = time.perf_counter(), time.process_time()
    acc = fn(model, task, cfg, 0)
    return time.perf_counter() - t0, time.process_time() - c0, acc


def compare(name, make_model, task, cfg, repeats):
    timed(trainer_run, make_model, task, {**cfg, "epochs": 1})  # warm-up, untimed
    timed(hand_loop, make_model, task, {**cfg, "epochs": 1})
    wall = {"trainer": [], "hand": []}
    cpu = {"trainer": [], "hand": []}
    accs = {"trainer": None, "hand": None}
    for r in range(repeats):
        order = (("trainer", trainer_run), ("hand", hand_loop))
        for label, fn in (order if r % 2 == 0 else order[::-1]):
            w, c, accs[label] = timed(fn, make_model, task, cfg)
            wall[label].append(w)
            cpu[label].append(c)
    med = {k: {who: statistics.median(v[who]) for who in v} for k, v in (("wall", wall), ("cpu", cpu))}
    ratio = med["wall"]["trainer"] / med["wall"]["hand"]
    cpu_ratio = med["cpu"]["trainer"] / med["cpu"]["hand"]
    result = {
        "workload": name, "wall_seconds": wall, "cpu_seconds": cpu,
        "trainer_median_s": med["wall"]["trainer"], "hand_median_s": med["wall"]["hand"],
        "ratio": ratio, "cpu_ratio": cpu_ratio,
        "median_pair_ratio": statistics.median(t / h for t, h in zip(wall["trainer"], wall["hand"])),
        "final_valid_accuracy": accs, "within_target": ratio <= TARGET, "within_target_cpu": cpu_ratio <= TARGET,
        # share of a core this process got: far below 1 means other processes disturbed the wall times
        "cpu_share": statistics.median(c / w for c, w in zip(cpu["trainer"] + cpu["hand"], wall["trainer"] + wall["hand"])),
    }
    print(f"{name:12s} wall: trainer {med['wall']['trainer']:7.3f}s hand {med['wall']['hand']:7.3f}s "
          f"ratio {ratio:.3f} | cpu ratio {cpu_ratio:.3f} (cpu share {result['cpu_share']:.2f}) | valid acc {accs['trainer']:.2f}/{accs['hand']:.2f}")
    return result


def load(quick: bool):
    spec = {"subset": 1000 if quick else 5000, "eval_subset": 1000 if quick else 2000}
    try:
        return "mnist", load_task({"dataset": "mnist", **spec}), load_task({"dataset": "mnist", "flatten": True, **spec})
    except DatasetNotFoundError as exc:
        print(f"MNIST unavailable ({exc}); using digits")
        return "digits", load_task({"dataset": "digits"}), load_task({"dataset": "digits", "flatten": True})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small subset, 2 epochs, 3 repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    repeats = args.repeats or (3 if args.quick else 7)
    cfg = {"epochs": 2 if args.quick else 3, "batch_size": 128, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4}
    dataset, images, flat = load(args.quick)
    load_before = os.getloadavg()
    results = [
        compare(f"cnn-{dataset}", lambda: small_cnn(images.input_shape, images.num_classes), images, cfg, repeats),
        compare(f"mlp-{dataset}", lambda: mlp(flat.input_shape, flat.num_classes), flat, cfg, repeats),
    ]
    out = {
        "benchmark": "trainer_overhead", "quick": args.quick, "target_ratio": TARGET,
        "config": {**cfg, "repeats": repeats, "train_samples": len(images.train), "valid_samples": len(images.valid),
                   "threads": args.threads, "device": "cpu"},
        "load_average": {"before": load_before, "after": os.getloadavg(), "cpus": os.cpu_count()},
        "torch": torch.__version__, "python": platform.python_version(), "results": results,
        "max_ratio": max(r["ratio"] for r in results), "max_cpu_ratio": max(r["cpu_ratio"] for r in results),
        "within_target": all(r["within_target"] for r in results),
        "within_target_cpu": all(r["within_target_cpu"] for r in results),
        "note": "ratio = median wall time trainer / hand loop (interleaved runs); cpu_ratio the same with "
                "process CPU time, which other processes on a shared machine disturb less",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")
    return out


if __name__ == "__main__":
    main()
