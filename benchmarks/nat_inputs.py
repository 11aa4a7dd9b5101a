"""NAT's input distribution p(beta) for training the shared weights: the paper's uniform
distribution over the whole cell space vs the input cell's neighbourhood (the default of
the ``nat`` compressor), at the same CPU budget.

For each cell, the supernet is trained with Algorithm 1's weight phase (lines 3-7) for
the same number of epochs under each p(beta); then the shared-weight validation accuracy
of the input cell and of 10 architectures of its neighbourhood Omega_beta (what NAT's
inference ranks) is measured.  A supernet whose shared weights rate those architectures
near chance cannot give NAT a useful reward R(alpha, w) - R(beta, w).

    nice python benchmarks/nat_inputs.py [--quick]
    nice python benchmarks/nat_inputs.py --rank   # Kendall tau: shared-weight vs trained accuracy

``--rank`` trains the input cell and 8 neighbours from scratch and compares that ranking
with the shared-weight one (neighbourhood p(beta)), the signal NAT's reward depends on.

Writes ``benchmarks/results/nat_inputs.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from nascore.data import load_task
from nascore_nat import genotypes
from nascore_nat.transformer import NeuralArchitectureTransformer

RESULTS = Path(__file__).resolve().parent / "results" / "nat_inputs.json"


def train_shared_weights(beta, task, inputs: str, epochs: int, seed: int = 0):
    nat = NeuralArchitectureTransformer(inputs=inputs, batch_size=32, C=8, layers=5, seed=seed)
    nat.setup(task, beta)
    w_split, _ = nat._split(task, torch.device("cpu"))
    rng = np.random.default_rng(seed)
    trainer = nat.weight_trainer(w_split, epochs=epochs)  # Algorithm 1's weight phase alone
    t0 = time.perf_counter()
    for epoch in range(epochs):
        loss = nat._mean_loss(trainer.train_epoch(epoch, sample_path=nat.input_sampler(rng)))
    return nat, loss, time.perf_counter() - t0


def neighbourhood(nat, beta, n: int, seed: int):
    """``n`` architectures of Omega_beta drawn like NAT's inference candidates (random policy)."""
    probe = NeuralArchitectureTransformer(inputs="neighbourhood")
    probe.template_, probe.ops_, probe.costs_ = beta, nat.ops_, nat.costs_
    probe._template_masks = nat.masks(beta)
    rng = np.random.default_rng(seed)
    return [probe.sample_input(rng) for _ in range(n)]


def ranking(beta, task, epochs: int, n: int, train_epochs: int) -> dict:
    """Kendall tau between shared-weight and trained-from-scratch validation accuracy over
    the input cell and ``n`` of its neighbours (the quantity NAT's reward relies on)."""
    from nascore.metrics import kendall_tau
    from nascore.training import Trainer
    import torch

    from nascore_nat.costs import build_network

    nat, _, _ = train_shared_weights(beta, task, "neighbourhood", epochs)
    archs = [beta] + neighbourhood(nat, beta, n, seed=2)
    shared = [nat.shared_accuracy(p, task.valid) for p in archs]
    trained = []
    for p in archs:
        with torch.random.fork_rng(devices=[]):  # seeded weights: the same network whatever ran before
            torch.manual_seed(0)
            model = build_network(p, task.input_shape, task.num_classes, C=8, layers=5)
        trainer = Trainer(epochs=train_epochs, batch_size=64, lr=0.05, device="cpu")
        trainer.fit(model, task, seed=0)
        trained.append(trainer.accuracy(model, task.valid))
    return {"shared": shared, "trained": trained, "kendall_tau": kendall_tau(shared, trained),
            "input_rank_shared": int(sorted(shared, reverse=True).index(shared[0])) + 1,
            "input_rank_trained": int(sorted(trained, reverse=True).index(trained[0])) + 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", nargs="+", default=["DARTS_V2", "ResBlock"])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rank", action="store_true",
                        help="only the ranking study: Kendall tau of shared-weight vs trained accuracy")
    args = parser.parse_args()
    torch.set_num_threads(1)
    task = load_task({"dataset": "digits", "seed": 0, **({"subset": 300, "eval_subset": 150} if args.quick else {})})
    epochs = 1 if args.quick else args.epochs
    cells = ["DARTS_V2"] if args.quick else args.cells
    from _common import write_result

    settings = {"cells": cells, "epochs": epochs, "rank": args.rank, "task": "digits" + (" subset 300" if args.quick else "")}
    if args.rank:  # the ranking study alone: its own file, nothing merged from an earlier one
        out = {"benchmark": "nat_inputs_ranking", "task": "digits"}
        for name in cells:
            out.setdefault("ranking", {})[name] = ranking(genotypes.published(name), task, epochs,
                                                          n=2 if args.quick else 8, train_epochs=1 if args.quick else 10)
            print(name, json.dumps(out["ranking"][name]), flush=True)
        write_result("nat_inputs_ranking", out, quick=args.quick, settings=settings, seeds=[1],
                     tuned_on="NAT plugin defaults; nothing tuned here")
        return
    out = {"benchmark": "nat_inputs", "task": "digits", "epochs": epochs, "cells": {}}
    for name in cells:
        beta = genotypes.published(name)
        for inputs in ("space", "neighbourhood"):
            nat, loss, seconds = train_shared_weights(beta, task, inputs, epochs)
            accs = [nat.shared_accuracy(p, task.valid) for p in neighbourhood(nat, beta, 10, seed=1)]
            out["cells"].setdefault(name, {})[inputs] = {
                "input_cell_shared_accuracy": nat.shared_accuracy(beta, task.valid),
                "neighbours_shared_accuracy": accs, "neighbours_mean": float(np.mean(accs)),
                "final_w_loss": loss, "seconds": seconds,
            }
            print(name, inputs, json.dumps(out["cells"][name][inputs])[:200], flush=True)
    write_result("nat_inputs", out, quick=args.quick, settings=settings, seeds=[1],
                 tuned_on="NAT plugin defaults; nothing tuned here")


if __name__ == "__main__":
    main()
