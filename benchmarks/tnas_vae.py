"""Quality and speed of the TNAS VAE (TNAS paper, Sections 3.2-3.3 and Figure 2).

For ``nb201`` and ``darts``: the VAE is trained on 1,000 random architectures (and, the
sampler's regime, on 30) and measured on them and on as many held-out ones --
reconstruction (share of positions and of whole architectures decoded back from the
posterior mean), the share of p_theta's samples that are valid genomes before any repair
and after, novel (not in the training set) and unique, and sampling speed (architectures
per second, decoded into validated ``Architecture`` values, and raw token sequences per
second).

Figure 2 analog on NAS-Bench-201 (CIFAR-10): train the VAE on the top 10% by
``cifar10_valid`` of 1,000 random architectures ("VAE TrainData") and compare the
``cifar10_test`` of 1,000 of its samples ("VAE Generation") with 1,000 random ones.

    python benchmarks/tnas_vae.py [--quick]

Writes ``benchmarks/results/tnas_vae.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "tnas_vae.json"
VAE = {"d_model": 32, "heads": 2, "layers": 2, "latent_dim": 8, "beta": 0.1, "lr": 3e-3, "batch_size": 64}


def _distribution(space, steps: int, seed: int = 0):
    from nascore_tnas.distribution import LearnedDistribution
    from nascore_tnas.vocabulary import ArchitectureVocabulary

    return LearnedDistribution(ArchitectureVocabulary(space), steps=steps, top_fraction=1.0, seed=seed, **VAE)


def quality(space, n: int, steps: int) -> dict:
    import torch

    rng = np.random.default_rng(0)
    train = [space.sample(rng) for _ in range(n)]
    held = [space.sample(rng) for _ in range(n)]
    dist = _distribution(space, steps)
    t = time.perf_counter()
    stats = dist.update(train, [0.0] * n)
    fit_seconds = time.perf_counter() - t

    def exact(archs):
        ids = torch.as_tensor(dist.vocab.encode(archs))
        return float((dist.vae.reconstruct(ids) == ids).all(dim=1).float().mean())

    raw = dist.sample_ids(n)
    genomes = [space.canonicalize(dist.vocab.genome(r)) for r in raw]
    valid_raw = float(np.mean([space.check(g) is None for g in genomes]))
    t = time.perf_counter()
    samples = dist.sample(n)
    arch_rate = len(samples) / (time.perf_counter() - t)
    t = time.perf_counter()
    dist.sample_ids(10 * n)
    token_rate = 10 * n / (time.perf_counter() - t)
    for a in samples:
        space.validate(a.genome)
    seen = {a.key for a in train}
    keys = [a.key for a in samples]
    return {"train_architectures": n, "adam_steps": steps, "fit_seconds": fit_seconds, "final_loss": stats,
            "reconstruction_positions_train": dist.reconstruction_accuracy(train),
            "reconstruction_positions_heldout": dist.reconstruction_accuracy(held),
            "reconstruction_exact_train": exact(train), "reconstruction_exact_heldout": exact(held),
            "valid_share_before_repair": valid_raw, "valid_share": 1.0 if len(samples) == n else len(samples) / n,
            "novel_share": float(np.mean([k not in seen for k in keys])),
            "unique_share": len(set(keys)) / len(keys),
            "architectures_per_second": arch_rate, "token_sequences_per_second": token_rate}


def figure2(steps: int, n: int) -> dict:
    import csv

    import nascore

    root = Path(os.environ.get("NASCORE_DATA", HERE.parent.parent / "shared" / "data"))
    with (root / "nb201" / "nb201.csv").open(newline="") as f:
        rows = {r["arch_str"]: (float(r["cifar10_valid"]), float(r["cifar10_test"])) for r in csv.DictReader(f)}
    space = nascore.create("search_space", "nb201")
    rng = np.random.default_rng(1)
    pool = [space.sample(rng) for _ in range(n)]
    valid = np.array([rows[space.to_string(a)][0] for a in pool])
    top = [pool[i] for i in np.argsort(-valid)[: n // 10]]
    dist = _distribution(space, steps, seed=1)
    dist.update(top, [0.0] * len(top))
    gen = dist.sample(n)
    test = lambda archs: [rows[space.to_string(a)][1] for a in archs]  # noqa: E731
    return {"random_mean_test": float(np.mean(test(pool))), "vae_traindata_mean_test": float(np.mean(test(top))),
            "vae_generation_mean_test": float(np.mean(test(gen))),
            "vae_generation_novel_share": float(np.mean([a.key not in {b.key for b in top} for a in gen])),
            "vae_generation_unique": len({a.key for a in gen}),
            "random_top10_by_valid_mean_test": float(np.mean([rows[space.to_string(pool[i])][1]
                                                              for i in np.argsort(-valid)[:10]])),
            "vae_generation_top10_by_valid_mean_test": float(np.mean(
                [rows[space.to_string(a)][1] for a in sorted(gen, key=lambda a: -rows[space.to_string(a)][0])[:10]]))}


def main(argv=None) -> int:
    import torch

    import nascore

    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="200 architectures, 100 steps, nb201 only")
    ap.add_argument("--small-only", action="store_true", help="only (re)measure the 30-architecture regime")
    args = ap.parse_args(argv)
    n, steps = (200, 100) if args.quick else (1000, 1500)
    data = {}  # this invocation only (--small-only writes the small regime alone)
    data.update({"vae": VAE})
    data.setdefault("spaces", {})
    for name in ["nb201"] if args.quick else ["nb201", "darts"]:
        space = nascore.create("search_space", name)
        if not args.small_only:
            data["spaces"][name] = quality(space, n, steps)
            print(name, json.dumps(data["spaces"][name], indent=1), flush=True)
        # the sampler's regime: the top 10% of a few hundred results, 30 architectures
        data["spaces"][f"{name} (30 architectures)"] = small = quality(space, 30, 600)
        print(name, "30 architectures:", json.dumps(small, indent=1), flush=True)
    if not args.small_only:
        data["figure2_nb201_cifar10"] = figure2(steps, n)
    print(json.dumps(data.get("figure2_nb201_cifar10"), indent=1))
    from _common import write_result

    write_result("tnas_vae", data, quick=args.quick, settings={"architectures": n, "steps": steps,
                                                               "small_only": args.small_only, "vae": VAE},
                 seeds=[0], tuned_on="nothing tuned here: one fixed VAE (settings.vae, 2 blocks, beta 0.1; not the "
                                     "sampler's defaults of 1 block, beta 1) measured on random architectures")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
