"""TNAS-G: gradient-based search with the TNAS sampler (Section 4.3 of the TNAS paper).

``Gamma(alpha) = p_theta(alpha|z)`` (Eq. 12): "We extract an architecture alpha_i from
p_theta(alpha|z), and update the super network weight W_alpha_i and multinomial
distribution parameter x_i accordingly."  Each step takes the path alpha_i of its round:

* the weights ``W_alpha_i`` of that single path get an SGD step on a train batch (Eq. 9);
* the per-edge multinomial parameters ``x`` (the supernet's architecture parameters)
  get an Adam step on a validation batch through the straight-through one-hot of
  alpha_i, ``h = onehot(alpha_i) + softmax(x) - stopgrad(softmax(x))``: the forward pass
  is exactly the path, the gradient is the one of the softmax relaxation (DARTS Eq. 2)
  at that path, as in GDAS and ProxylessNAS (the paper's references [9, 15]).

The VAE learns from the paths' supernet validation accuracy (Eq. 1).  The first round
draws uniformly (there is no p_theta before any data), every later one from p_theta
alone.  The candidates -- the argmax of ``x`` (DARTS discretization) and draws of
p_theta -- are ranked by supernet accuracy and the best retrained from scratch.
"""

from __future__ import annotations

import time

import attrs
import numpy as np

from nascore import param
from nascore.api import in_range, one_of

from .weight_sharing import WeightSharingSettings, cost_info, retrain_best, score_round


def _onehot_rows(entries, num_ops: int, like):
    import torch

    hard = torch.zeros(len(entries), num_ops, dtype=like.dtype, device=like.device)
    for e, entry in enumerate(entries):
        for o in ([] if entry is None else [entry] if isinstance(entry, int) else list(entry)):
            hard[e, int(o)] += 1.0
    return hard


def straight_through_weights(net, path):
    """Mixture weights equal to the path's one-hot in the forward pass whose gradient
    flows to the supernet's architecture parameters through their softmax."""
    soft = net.softmax_weights()
    if isinstance(soft, dict):
        return {k: _onehot_rows(path[k], s.shape[1], s) + s - s.detach() for k, s in soft.items()}
    return _onehot_rows(path, soft.shape[1], soft) + soft - soft.detach()


@attrs.define
class TNASGradient(WeightSharingSettings):
    """TNAS-G: paths drawn from p_theta (Eq. 12) update the path's supernet weights and the
    multinomial architecture parameters; the VAE learns from supernet accuracy."""

    conformance = {"params": {"epochs": 1, "vae_steps": 5, "vae_candidates": 3, "measure_child_epoch": False},
                   "space": {"name": "nb201", "C": 4, "N": 1}, "task": {"dataset": "digits", "subset": 200},
                   "budget": 1}

    arch_lr: float = param(3e-3, help="Adam learning rate of the multinomial parameters x",
                           validator=in_range(0.0, low_open=True))
    arch_weight_decay: float = param(1e-3, help="weight decay of x (DARTS)", validator=in_range(0.0))
    vae_candidates: int = param(20, help="p_theta draws ranked with argmax(x) at the end", validator=in_range(0))
    path_sampler: str = param("tnas", help="'tnas': each round's paths from p_theta (Eq. 12); 'uniform': "
                              "uniform paths and uniform candidates, the baseline without the learned sampler",
                              validator=one_of("tnas", "uniform"))

    def run(self, ctx):
        """Alternating W / x updates on paths from p_theta, then retraining (Section 4.3)."""
        import torch

        self.check_heads()
        rng = np.random.default_rng(ctx.rng.integers(2**63))
        t0 = time.perf_counter()
        trainer = self.make_trainer(ctx, seed=int(rng.integers(2**31)))
        sampler = self.make_sampler(ctx.space, rng, eps_inc=0.0, eps_init=1.0)
        arch_opt = torch.optim.Adam(trainer.net.arch_parameters(), lr=self.arch_lr, betas=(0.5, 0.999),
                                    weight_decay=self.arch_weight_decay)
        rounds = self.rounds(trainer)
        with ctx.progress(rounds, "tnas-g supernet"):
            for r in range(rounds):
                paths = (sampler.ask(self.archs_per_round) if self.path_sampler == "tnas"
                         else [ctx.space.sample(rng) for _ in range(self.archs_per_round)])
                trainer.train(paths, self.round_steps, arch_step=self.arch_step(trainer.net, arch_opt))
                accs = score_round(trainer, sampler, paths, rng, self.score_samples)
                if (r + 1) % max(1, rounds // 5) == 0 or r == rounds - 1:
                    ctx.log(f"tnas-gradient round {r + 1}/{rounds}: supernet valid acc mean "
                            f"{np.mean(accs):.1f} max {np.max(accs):.1f}")
        t1 = time.perf_counter()
        ranked, fitness, argmax_arch = self.rank_candidates(ctx, trainer, sampler, rng)
        info = {"rounds": rounds, "path_sampler": self.path_sampler, "sampler": dict(sampler.stats), "vae": dict(sampler.distribution.last_stats),
                "train_seconds": t1 - t0, "search_seconds": time.perf_counter() - t1,
                "argmax_arch": argmax_arch.genome, "argmax_supernet_accuracy": fitness[argmax_arch.key],
                "arch_weights": [w.detach().softmax(-1).tolist() for w in trainer.net.arch_parameters()],
                "supernet_accuracy": {a.key: fitness[a.key] for a in ranked[:max(self.final_candidates, 5)]}}
        info.update(cost_info(trainer, self, ranked[0]))
        return retrain_best(ctx, ranked, self.final_candidates, info)

    def arch_step(self, net, arch_opt):
        """The architecture hook of the core trainer: one Adam step on x with the loss of
        the step's straight-through path on its validation batch."""
        import torch.nn.functional as F

        def step(s):
            x, y = s.batch
            loss = F.cross_entropy(net(x, weights=straight_through_weights(net, s.path)), y)
            arch_opt.zero_grad(set_to_none=True)
            net.zero_grad(set_to_none=True)
            loss.backward()
            arch_opt.step()
            net.zero_grad(set_to_none=True)
            return loss.detach()

        return step

    def rank_candidates(self, ctx, trainer, sampler, rng):
        """argmax(x) and ``vae_candidates`` p_theta draws, ranked by supernet accuracy."""
        argmax_arch = ctx.space.from_weights(trainer.net.softmax_weights())
        idx = trainer.valid_indices(None, rng)
        cands = {argmax_arch.key: argmax_arch}
        draws = (sampler.sample_model(self.vae_candidates) if self.path_sampler == "tnas"
                 else [ctx.space.sample(rng) for _ in range(self.vae_candidates)]) if self.vae_candidates else []
        for a in draws:
            cands.setdefault(a.key, a)
        fitness = {k: trainer.accuracy(a, idx) for k, a in cands.items()}
        ranked = sorted(cands.values(), key=lambda a: -fitness[a.key])
        return ranked, fitness, argmax_arch

