"""What nascore's GPU path costs on the CUDA device at hand, per MNIST epoch.

Measures, each timed between device synchronizations with the peak GPU memory it
allocated (``torch.cuda.max_memory_allocated``):

* trainer vs hand-written loop (:mod:`trainer_overhead`'s ``compare``) in fp32 and bf16;
* one Trainer epoch of LeNet-5 (STEERAGE's lenet5 space) and of the quickstart network
  (an NB-201 cell network, C=8, N=1) at batch 256 in fp32, bf16 and bf16 + channels_last;
* one DARTS supernet epoch (continuous relaxation; weights on one half of the train
  split, first-order architecture steps on the other) and one epoch of a DARTS network of
  the same size;
* one MS-RANAS search epoch (first order) and one epoch of a multi-scale network;
* one NAT epoch (Algorithm 1: supernet weights, then the GCN policy);
* one TNAS one-shot epoch (single-path steps on the quickstart-size NB-201 supernet).

Targets (issue 21): trainer/hand <= 1.05 in fp32 and bf16; bf16 >= 1.5x faster than fp32
for the quickstart network at batch 256; a supernet epoch <= 4x a derived network's epoch
(``supernet_ratio``).  The file records what was measured and on which card; a CPU run
says so and claims nothing about CUDA.

    python benchmarks/gpu_check.py            # on CUDA: full MNIST (54,000 train images)
    python benchmarks/gpu_check.py --subset 10000   # a shorter CUDA check
    python benchmarks/gpu_check.py --quick    # tiny digits version, seconds on a CPU (a test runs it)

Writes ``benchmarks/results/gpu_check.json`` (``gpu_check_quick.json`` with --quick).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402
from trainer_overhead import OPTIONS, compare, small_cnn  # noqa: E402

import nascore  # noqa: E402
from nascore.api import WeightSharingTrainer  # noqa: E402
from nascore.data import load_task  # noqa: E402
from nascore.training import Trainer  # noqa: E402

CHECK = {"ignore": ["*peak*", "*valid_accuracy*", "*loss*", "*device_name*", "*within*", "torch", "python",
                    "*meets*", "*speedup*"]}

LENET5 = {"image_filter": "lanczos", "image_size": 28, "kernel": 5, "conv1": 6, "pool1": "max", "conv2": 16,
          "pool2": "max", "fc1": 4, "fc2": 4, "fc3": 4, "quant_bits": 32}
MSRANAS_GENOTYPE = {
    "normal": [("sep_conv_3x3", 0, 2), ("skip_connect", 1, 2), ("dil_conv_3x3", 1, 3), ("max_pool_3x3", 2, 3)],
    "normal_concat": [2, 3],
    "reduce": [("avg_pool_3x3", 0, 2), ("sep_conv_5x5", 1, 2), ("skip_connect", 0, 3), ("dil_conv_5x5", 2, 3)],
    "reduce_concat": [2, 3],
}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(device, fn) -> dict:
    """Seconds of ``fn()`` between synchronizations and the peak memory it allocated (MB,
    CUDA only); ``fn``'s dict is merged in."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    sync(device)
    t0 = time.perf_counter()
    out = fn() or {}
    sync(device)
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {"seconds": seconds, "peak_mb": peak, **out}


def trainer_epoch(build, task, device, *, batch_size, epochs, **opts) -> dict:
    """Median seconds of one Trainer epoch (``epochs`` epochs, the first is a warm-up that
    is not counted when there are several)."""
    torch.manual_seed(0)
    model = build()
    trainer = Trainer(epochs=epochs, batch_size=batch_size, lr=0.05, device=str(device), grad_clip=None,
                      eval_batch_size=1024, **opts)
    per_epoch = []
    last = [time.perf_counter()]

    def progress(record):
        sync(device)
        now = time.perf_counter()
        per_epoch.append(now - last[0])
        last[0] = now

    stats = measure(device, lambda: {"valid_accuracy": trainer.fit(model, task, seed=0, progress=progress)
                                     .curve[-1]["valid_accuracy"]})
    counted = per_epoch[1:] if len(per_epoch) > 1 else per_epoch
    return {"epoch_seconds": statistics.median(counted), "epochs": epochs, "batch_size": batch_size,
            "options": opts, "peak_mb": stats["peak_mb"], "valid_accuracy": stats["valid_accuracy"]}


def halves(task, seed=0):
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(task.train), generator=g)
    h = len(perm) // 2
    return perm[:h], perm[h:]


def darts_supernet_epoch(task, device, cfg) -> dict:
    """One epoch of the DARTS continuous relaxation: weight steps on one half of the
    train split, a first-order Adam step of alpha on the other half before each."""
    import torch.nn.functional as F

    space = nascore.create("search_space", "darts", C=cfg["C"], layers=cfg["layers"], nodes=cfg["nodes"])
    torch.manual_seed(0)
    net = space.supernet(task)
    w_idx, a_idx = halves(task)
    trainer = WeightSharingTrainer(batch_size=cfg["batch_size"], lr=0.025, alternate="step", arch_first=True,
                                   batching="epoch", device=str(device), seed=0)
    trainer.setup(net, (task.train.X[w_idx], task.train.y[w_idx]), (task.train.X[a_idx], task.train.y[a_idx]),
                  weights=net.weight_parameters(), arch_parameters=net.arch_parameters(), horizon=1)
    alpha_opt = torch.optim.Adam(net.arch_parameters(), lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)

    def arch_step(step):
        x, y = step.batch
        alpha_opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        alpha_opt.step()

    stats = measure(device, lambda: {"loss": float(trainer.train_epoch(0, arch_step=arch_step)["loss"])})
    derived_arch = space.sample(np.random.default_rng(0))
    derived = trainer_epoch(lambda: space.build(derived_arch, task), task, device, batch_size=cfg["batch_size"],
                            epochs=1)
    return {"supernet": stats, "derived": derived, "supernet_ratio": stats["seconds"] / derived["epoch_seconds"],
            "config": cfg}


def msranas_search_epoch(task, device, cfg) -> dict:
    from nascore.nn.ops import DARTS_OPS
    from nascore.spaces.darts import DartsSpace
    from nascore_msranas.network import MultiScaleNetwork, MultiScaleSupernet, make_layout
    from nascore_msranas.search import Searcher, SearchSettings

    shape = task.input_shape
    layout = make_layout(shape, scales=cfg["scales"], layers=cfg["layers"], C=cfg["C"])
    torch.manual_seed(0)
    net = MultiScaleSupernet(DARTS_OPS, shape, task.num_classes, layout, nodes=2)
    settings = SearchSettings(epochs=1, batch_size=cfg["batch_size"], order="first")
    searcher = Searcher(net, DartsSpace(nodes=2), task, settings, seed=0, device=str(device))
    stats = measure(device, lambda: {"loss": float(searcher.run().epochs[0]["train_loss"])})
    derived = trainer_epoch(lambda: MultiScaleNetwork(MSRANAS_GENOTYPE, shape, task.num_classes, layout), task,
                            device, batch_size=cfg["batch_size"], epochs=1)
    return {"supernet": stats, "derived": derived, "supernet_ratio": stats["seconds"] / derived["epoch_seconds"],
            "config": cfg}


def nat_epoch(task, device, cfg) -> dict:
    from nascore_nat import genotypes
    from nascore_nat.transformer import NeuralArchitectureTransformer

    beta = genotypes.published("DARTS_V2")
    nat = NeuralArchitectureTransformer(epochs=1, C=cfg["C"], layers=cfg["layers"], batch_size=cfg["batch_size"],
                                        inputs="neighbourhood", device=str(device), seed=0)
    stats = measure(device, lambda: {"loss": float(nat.fit(task, beta, cost_network=(cfg["C"], cfg["layers"]))
                                                   .history_[-1]["w_loss"])})
    space = nascore.create("search_space", "darts", C=cfg["C"], layers=cfg["layers"])
    derived_arch = space.sample(np.random.default_rng(0))
    derived = trainer_epoch(lambda: space.build(derived_arch, task), task, device, batch_size=cfg["batch_size"],
                            epochs=1)
    return {"supernet": stats, "derived": derived, "supernet_ratio": stats["seconds"] / derived["epoch_seconds"],
            "config": cfg, "note": "one epoch = a weight phase over 40% of train plus a policy phase over the rest"}


def tnas_oneshot_epoch(task, device, cfg) -> dict:
    from nascore_tnas.supernet import PathSupernet

    space = nascore.create("search_space", "nb201", C=cfg["C"], N=cfg["N"])
    steps = -(-len(task.train) // cfg["batch_size"])
    sn = PathSupernet(space, task, steps_total=steps, batch_size=cfg["batch_size"], device=str(device), seed=0)
    rng = np.random.default_rng(0)
    paths = [space.sample(rng) for _ in range(64)]
    stats = measure(device, lambda: {"loss": float(np.mean(_as_list(sn.train(paths, steps).get("loss"))))})
    derived = trainer_epoch(lambda: space.build(paths[0], task), task, device, batch_size=cfg["batch_size"], epochs=1)
    return {"supernet": stats, "derived": derived, "supernet_ratio": stats["seconds"] / derived["epoch_seconds"],
            "config": {**cfg, "steps": steps}}


def _as_list(v):
    if v is None:
        return [float("nan")]
    if torch.is_tensor(v):
        return v.detach().float().cpu().reshape(-1).tolist()
    return list(v) if isinstance(v, (list, tuple)) else [float(v)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny digits version (seconds on a CPU)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--subset", type=int, default=None,
                        help="train on this many MNIST images (default: all 54,000) for a shorter check")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    from nascore.device import resolve_device

    device = resolve_device(args.device)
    if device.type == "cpu" and not args.quick:
        print("gpu_check: no CUDA device here; the full check measures CUDA only (--quick runs the tiny CPU "
              "version); nothing written")
        return None
    if device.type == "cpu":
        torch.set_num_threads(1)
    if args.quick:
        task = load_task({"dataset": "digits", "subset": 128, "eval_subset": 64})
        epochs, repeats, batch = 2, 1, 64
        sizes = {"darts": {"C": 4, "layers": 3, "nodes": 2, "batch_size": 64},
                 "msranas": {"C": 2, "layers": 3, "scales": 2, "batch_size": 64},
                 "nat": {"C": 4, "layers": 3, "batch_size": 64},
                 "tnas": {"C": 4, "N": 1, "batch_size": 64}}
        lenet = {**LENET5, "image_size": 8}
        lenet_space = nascore.create("search_space", "lenet5", input_size=8)
        overhead_cfg = {"epochs": 1, "batch_size": 64, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4}
    else:
        task = load_task({"dataset": "mnist", **({"subset": args.subset} if args.subset else {})})
        epochs, repeats, batch = 3, 5, 256
        sizes = {"darts": {"C": 16, "layers": 8, "nodes": 4, "batch_size": 64},
                 "msranas": {"C": 8, "layers": 6, "scales": 3, "batch_size": 64},
                 "nat": {"C": 16, "layers": 8, "batch_size": 64},
                 "tnas": {"C": 8, "N": 1, "batch_size": 256}}
        lenet = LENET5
        lenet_space = nascore.create("search_space", "lenet5", input_size=28)
        overhead_cfg = {"epochs": 2, "batch_size": 256, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4}
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    print(f"device: {device} ({name}); train {len(task.train)} images", flush=True)
    out: dict = {"benchmark": "gpu_check", "quick": args.quick, "device": str(device), "device_name": name,
                 "cuda": device.type == "cuda", "torch": torch.__version__, "python": platform.python_version(),
                 "train_samples": len(task.train)}

    # trainer vs hand loop, fp32 and bf16
    out["trainer_vs_hand"] = {
        p: compare(f"cnn/{p}", lambda: small_cnn(task.input_shape, task.num_classes), task, overhead_cfg, repeats,
                   OPTIONS[p], device) for p in ("fp32", "bf16")}

    # per-epoch cost of LeNet-5 and the quickstart network
    quick_space = nascore.create("search_space", "nb201", C=8, N=1)
    quick_arch = quick_space.sample(np.random.default_rng(0))
    lenet_arch = lenet_space.make(lenet)
    networks = {"lenet5": lambda: lenet_space.build(lenet_arch, task),
                "quickstart": lambda: quick_space.build(quick_arch, task)}
    variants = {"fp32": {}, "bf16": {"precision": "bf16"}, "bf16_channels_last": {"precision": "bf16",
                                                                                  "channels_last": True}}
    out["epochs"] = {}
    for net_name, build in networks.items():
        out["epochs"][net_name] = {v: trainer_epoch(build, task, device, batch_size=batch, epochs=epochs, **opts)
                                   for v, opts in variants.items()}
        e = out["epochs"][net_name]
        e["bf16_speedup"] = e["fp32"]["epoch_seconds"] / e["bf16"]["epoch_seconds"]
        print(f"{net_name}: " + ", ".join(f"{v} {e[v]['epoch_seconds']:.3f}s" for v in variants)
              + f" (bf16 speedup {e['bf16_speedup']:.2f})", flush=True)

    # supernet epochs against a derived network's epoch
    out["supernets"] = {}
    for key, fn in (("darts", darts_supernet_epoch), ("msranas", msranas_search_epoch), ("nat", nat_epoch),
                    ("tnas_oneshot", tnas_oneshot_epoch)):
        r = fn(task, device, sizes[key.split("_")[0]])
        out["supernets"][key] = r
        print(f"{key}: supernet epoch {r['supernet']['seconds']:.2f}s, derived epoch "
              f"{r['derived']['epoch_seconds']:.2f}s, ratio {r['supernet_ratio']:.2f}", flush=True)

    peaks = [r["peak_mb"] for r in out["trainer_vs_hand"].values() if r.get("peak_mb")]
    peaks += [v["peak_mb"] for e in out["epochs"].values() for v in e.values() if isinstance(v, dict) and v["peak_mb"]]
    peaks += [r["supernet"]["peak_mb"] for r in out["supernets"].values() if r["supernet"]["peak_mb"]]
    out["peak_gpu_memory_mb"] = max(peaks) if peaks else None
    out["targets"] = {
        "trainer_ratio_fp32": out["trainer_vs_hand"]["fp32"]["ratio"],
        "trainer_ratio_bf16": out["trainer_vs_hand"]["bf16"]["ratio"],
        "trainer_within_1.05": all(r["ratio"] <= 1.05 for r in out["trainer_vs_hand"].values()),
        "quickstart_bf16_speedup": out["epochs"]["quickstart"]["bf16_speedup"],
        "bf16_meets_1.5x": out["epochs"]["quickstart"]["bf16_speedup"] >= 1.5,
        "supernet_ratios": {k: r["supernet_ratio"] for k, r in out["supernets"].items()},
        "supernets_within_4x": all(r["supernet_ratio"] <= 4 for r in out["supernets"].values()),
        "measured_on_cuda": device.type == "cuda",
    }
    if device.type != "cuda":
        out["note"] = ("no CUDA device: a CPU run checks that the script works; its timings say nothing about "
                       "the CUDA targets")
    settings = {"quick": args.quick, "subset": args.subset, "device": str(device), "epochs": epochs, "batch_size": batch, "repeats": repeats,
                "sizes": sizes, "lenet5": lenet, "quickstart_genome": quick_arch.genome,
                "overhead": overhead_cfg, "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}}
    write_result("gpu_check", out, quick=args.quick, settings=settings, seeds=[0], path=args.out)
    return out


if __name__ == "__main__":
    main()
