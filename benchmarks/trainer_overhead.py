"""Overhead of nascore's Trainer over a hand-written minimal PyTorch loop, per option.

Same model (same initial weights), same in-memory data, same epochs, optimizer and
cosine schedule, and both validate once per epoch (the learning curve).  The hand loop is
the least a user would write: seeded permutation, forward, cross-entropy, backward,
step; no loss bookkeeping.  Each option is applied on both sides the same way:

* ``fp32``: the plain loop;
* ``bf16``: forward under ``torch.autocast(dtype=bfloat16)``, loss in fp32;
* ``channels_last``: model and batches in NHWC memory format (images only);
* ``augment``: random crop (padding = side/8) and horizontal flip on the device.  The hand
  loop calls the same vectorized kernels (``nascore.training.random_crop`` /
  ``random_flip``): the ratio measures the Trainer's loop overhead, not the kernels.

Runs are interleaved (ABAB..., order alternating) and the ratio of the median wall times
trainer/hand is reported (and the same ratio of CPU times, steadier on a shared machine);
the target is <= 1.05 for every option.

    python benchmarks/trainer_overhead.py [--quick] [--options fp32,bf16,channels_last,augment] [--device cpu]

Writes ``benchmarks/results/trainer_overhead.json`` (``_quick`` with --quick).  Uses
MNIST from $NASCORE_DATA (a train subset), or scikit-learn's digits when MNIST is absent.
:mod:`gpu_check` reuses :func:`compare` on CUDA.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

from nascore.data import load_task  # noqa: E402
from nascore.errors import DatasetNotFoundError  # noqa: E402
from nascore.training import Trainer, random_crop, random_flip  # noqa: E402

TARGET = 1.05
#: Trainer fields of each option (the hand loop does the same by hand)
OPTIONS = {
    "fp32": {},
    "bf16": {"precision": "bf16"},
    "channels_last": {"channels_last": True},
    "augment": {"random_crop": True, "hflip": True},
}
IMAGE_ONLY = {"channels_last", "augment"}
CHECK = {"ignore": ["*final_valid_accuracy*", "*cpu_share*", "*within_target*", "torch", "python"]}


def small_cnn(shape, classes):
    c, h, w = shape
    return nn.Sequential(
        nn.Conv2d(c, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * (h // 4) * (w // 4), classes),
    )


def mlp(shape, classes):
    return nn.Sequential(nn.Linear(shape[0], 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, classes))


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def hand_loop(model, task, cfg, seed, opts, device):
    """The minimal in-memory loop with ``opts`` applied by hand: what the Trainer must not
    be slower than."""
    X, y = task.train.X.to(device), task.train.y.to(device)
    Xv, yv = task.valid.X.to(device), task.valid.y.to(device)
    model.to(device)
    cl = opts.get("channels_last", False)
    if cl:
        model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"],
                          weight_decay=cfg["weight_decay"])
    g = torch.Generator(device=device).manual_seed(seed)
    bf16 = opts.get("precision") == "bf16"

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    pad = max(1, round(X.shape[-1] / 8)) if X.dim() == 4 else 0
    fill = None
    if opts.get("random_crop"):  # black after normalization, as the Trainer pads
        fill = -torch.tensor(task.meta["mean"], device=device) / torch.tensor(task.meta["std"], device=device)
    n, bs, epochs = len(y), cfg["batch_size"], cfg["epochs"]
    acc = None
    for epoch in range(epochs):
        for group in opt.param_groups:
            group["lr"] = 0.5 * cfg["lr"] * (1 + math.cos(math.pi * epoch / epochs))
        model.train()
        perm = torch.randperm(n, generator=g, device=device)
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            xb = X[idx]
            if opts.get("random_crop"):
                xb = random_flip(random_crop(xb, pad, g, fill=fill), g)
            if cl:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with autocast():
                out = model(xb)
            loss = F.cross_entropy(out.float(), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad(), autocast():
            correct = sum(int((model(Xv[i:i + 1024]).argmax(1) == yv[i:i + 1024]).sum())
                          for i in range(0, len(yv), 1024))
        acc = 100.0 * correct / len(yv)
    return acc


def trainer_run(model, task, cfg, seed, opts, device):
    trainer = Trainer(optimizer="sgd", schedule="cosine", grad_clip=None, device=str(device),
                      eval_batch_size=1024, **cfg, **opts)
    return trainer.fit(model, task, seed=seed).curve[-1]["valid_accuracy"]


def timed(fn, make_model, task, cfg, opts, device):
    """Wall and CPU seconds of one training run (CPU time is robust to other processes
    sharing the machine, since torch runs single-threaded here)."""
    torch.manual_seed(0)
    model = make_model()
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    acc = fn(model, task, cfg, 0, opts, device)
    _sync(device)
    return time.perf_counter() - t0, time.process_time() - c0, acc


def compare(name, make_model, task, cfg, repeats, opts=None, device=torch.device("cpu")):
    """Interleaved trainer / hand-loop runs of one workload and option; medians and ratios."""
    opts = opts or {}
    timed(trainer_run, make_model, task, {**cfg, "epochs": 1}, opts, device)  # warm-up, untimed
    timed(hand_loop, make_model, task, {**cfg, "epochs": 1}, opts, device)
    wall = {"trainer": [], "hand": []}
    cpu = {"trainer": [], "hand": []}
    accs = {"trainer": None, "hand": None}
    for r in range(repeats):
        order = (("trainer", trainer_run), ("hand", hand_loop))
        for label, fn in (order if r % 2 == 0 else order[::-1]):
            w, c, accs[label] = timed(fn, make_model, task, cfg, opts, device)
            wall[label].append(w)
            cpu[label].append(c)
    med = {k: {who: statistics.median(v[who]) for who in v} for k, v in (("wall", wall), ("cpu", cpu))}
    ratio = med["wall"]["trainer"] / med["wall"]["hand"]
    cpu_ratio = med["cpu"]["trainer"] / med["cpu"]["hand"]
    result = {
        "workload": name, "options": opts, "wall_seconds": wall, "cpu_seconds": cpu,
        "trainer_median_s": med["wall"]["trainer"], "hand_median_s": med["wall"]["hand"],
        "ratio": ratio, "cpu_ratio": cpu_ratio,
        "median_pair_ratio": statistics.median(t / h for t, h in zip(wall["trainer"], wall["hand"])),
        "final_valid_accuracy": accs, "within_target": ratio <= TARGET, "within_target_cpu": cpu_ratio <= TARGET,
        # share of a core this process got: far below 1 means other processes disturbed the wall times
        "cpu_share": statistics.median(c / w for c, w in zip(cpu["trainer"] + cpu["hand"], wall["trainer"] + wall["hand"])),
    }
    print(f"{name:24s} wall: trainer {med['wall']['trainer']:7.3f}s hand {med['wall']['hand']:7.3f}s "
          f"ratio {ratio:.3f} | cpu ratio {cpu_ratio:.3f} (cpu share {result['cpu_share']:.2f}) | "
          f"valid acc {accs['trainer']:.2f}/{accs['hand']:.2f}", flush=True)
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
    parser.add_argument("--options", default=",".join(OPTIONS), help="comma-separated: " + ", ".join(OPTIONS))
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    options = [o.strip() for o in args.options.split(",") if o.strip()]
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        parser.error(f"unknown option(s) {', '.join(unknown)}; choose from {', '.join(OPTIONS)}")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    repeats = args.repeats or (3 if args.quick else 7)
    cfg = {"epochs": 2 if args.quick else 3, "batch_size": 128, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4}
    dataset, images, flat = load(args.quick)
    load_before = os.getloadavg()
    results = []
    for option in options:
        opts = OPTIONS[option]
        results.append(compare(f"cnn-{dataset}/{option}", lambda: small_cnn(images.input_shape, images.num_classes),
                               images, cfg, repeats, opts, device))
        if option not in IMAGE_ONLY:
            results.append(compare(f"mlp-{dataset}/{option}", lambda: mlp(flat.input_shape, flat.num_classes),
                                   flat, cfg, repeats, opts, device))
    per_option = {o: {"max_ratio": max(r["ratio"] for r in results if r["workload"].endswith("/" + o)),
                      "max_cpu_ratio": max(r["cpu_ratio"] for r in results if r["workload"].endswith("/" + o))}
                  for o in options}
    for o in per_option.values():
        o["within_target"], o["within_target_cpu"] = o["max_ratio"] <= TARGET, o["max_cpu_ratio"] <= TARGET
    settings = {**cfg, "repeats": repeats, "train_samples": len(images.train), "valid_samples": len(images.valid),
                "threads": args.threads, "device": str(device), "dataset": dataset, "options": options}
    out = {
        "benchmark": "trainer_overhead", "quick": args.quick, "target_ratio": TARGET, "config": settings,
        "machine": {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
                    or platform.machine(), "cpus": os.cpu_count()},
        "load_average": {"before": load_before, "after": os.getloadavg(), "cpus": os.cpu_count()},
        "torch": torch.__version__, "python": platform.python_version(), "results": results,
        "per_option": per_option,
        "max_ratio": max(r["ratio"] for r in results), "max_cpu_ratio": max(r["cpu_ratio"] for r in results),
        "within_target": all(r["within_target"] for r in results),
        "within_target_cpu": all(r["within_target_cpu"] for r in results),
        "note": "ratio = median wall time trainer / hand loop (interleaved runs); cpu_ratio the same with "
                "process CPU time, which other processes on a shared machine disturb less",
    }
    write_result("trainer_overhead", out, quick=args.quick, settings=settings, seeds=[0], path=args.out)
    return out


if __name__ == "__main__":
    main()
