"""The ``nat`` compressor: NAT applied to the best cell of any ``darts``-space run.

``compress(arch, model, task, ctx)`` trains a Neural Architecture Transformer on the task
(Algorithm 1, supernet shaped like ``arch``'s cells), transforms ``arch`` (sampling- or
maximum-GCN, Section 3.4), and retrains the optimized network from scratch with the
run's training budget (Section 4.1: "we replace the original cell with the optimized one
and train the model from scratch").  Parameters and multiply-adds never rise unless
``max_cost_ratio`` > 1 allows it (see :mod:`nascore_nat.costs`).  The defaults are
:data:`nascore_nat.defaults.DEFAULTS`, shared with the API class and the CLI.
"""

from __future__ import annotations

import time
from typing import ClassVar

import attrs

from nascore.api import in_range, one_of, param
from nascore.api import Compressed

from .defaults import DEFAULTS as D


@attrs.define
class NATCompressor:
    """Neural Architecture Transformer (Guo et al., NeurIPS 2019): turn redundant ops of a cell into skip/none."""

    conformance: ClassVar[dict] = {
        "space": "darts",
        "params": {"epochs": 1, "C": 4, "layers": 3, "samples": 2, "retrain": False, "batch_size": 128,
                   "inference": "sampling", "warmup_epochs": 0},
    }

    policy: str = param(D["policy"], help="policy: gcn (NAT, Eq. 3), lstm or random (Section 4.4 baselines)",
                        validator=one_of("gcn", "lstm", "random"))
    inference: str = param(D["inference"], help="calibrated (the best of the shared-weight shortlist and the input "
                           "after calibrate_epochs of real training), sampling (best of `samples` draws by "
                           "shared-weight validation accuracy, the paper) or maximum (argmax per edge)",
                           validator=one_of("calibrated", "sampling", "maximum"))
    samples: int = param(D["samples"], help="candidates drawn from the policy at inference (10 in NAT's code)",
                         validator=in_range(1))
    calibrate_top: int = param(D["calibrate_top"], help="calibrated inference: candidates (best by shared weights) "
                               "trained for real beside the input", validator=in_range(1))
    calibrate_epochs: int = param(D["calibrate_epochs"], help="calibrated inference: epochs of that training "
                                  "(the run's trainer settings otherwise)", validator=in_range(1))
    calibrate_init: str = param(D["calibrate_init"], help="calibrated inference: 'scratch' (each candidate trained "
                                "from seeded weights) or 'inherit' (the input trained calibrate_epochs, then each "
                                "candidate and the input fine-tuned finetune_epochs from its weights)",
                                validator=one_of("scratch", "inherit"))
    finetune_epochs: int = param(D["finetune_epochs"], help="calibrated inference with calibrate_init='inherit': "
                                 "epochs of fine-tuning", validator=in_range(1))
    epochs: int = param(D["epochs"], help="epochs of Algorithm 1 (100 in the paper)", validator=in_range(1))
    inputs: str = param(D["inputs"], help="p(beta) while training: 'neighbourhood' (the input cell's transitions, "
                        "never to null) or 'space' (uniform over the cell space without nulls, the paper)",
                        validator=one_of("space", "neighbourhood"))
    input_fraction: float = param(D["input_fraction"], help="share of the supernet's draws that are the input cell",
                                  validator=in_range(0.0, 1.0))
    warmup_epochs: int = param(D["warmup_epochs"], help="epochs training the supernet on the input cell alone "
                               "before Algorithm 1 (0 in the paper)", validator=in_range(0))
    C: int = param(D["C"], help="channels of the supernet", validator=in_range(2))
    layers: int = param(D["layers"], help="cells of the supernet (8 in the paper)", validator=in_range(3))
    batch_size: int = param(D["batch_size"], help="mini-batch size of Algorithm 1 (64 in NAT's code)",
                            validator=in_range(1))
    theta_lr: float = param(D["theta_lr"], help="Adam learning rate of the policy (3e-4 in the paper)",
                            validator=in_range(0.0, low_open=True))
    entropy_weight: float = param(D["entropy_weight"], help="lambda of the entropy regularizer (Eq. 4)",
                                  validator=in_range(0.0))
    entropy_floor: float = param(D["entropy_floor"], help="collapse guard: fraction of the uniform policy's "
                                 "entropy below which the entropy coefficient rises; 0 disables",
                                 validator=in_range(0.0, 1.0))
    m: int = param(D["m"], help="input architectures per policy step", validator=in_range(1))
    n: int = param(D["n"], help="sampled architectures per input per policy step", validator=in_range(1))
    max_cost_ratio: float = param(D["max_cost_ratio"], help="allowed params and MAdds of the output as a multiple "
                                  "of the input's (1: never more)", validator=in_range(1.0))
    retrain: bool = param(True, help="train the optimized network (and the input one when no model is given) from "
                          "scratch with the run's trainer settings")
    retrain_epochs: int | None = param(None, help="epochs of that retraining; none: the run's evaluator epochs",
                                       validator=in_range(1))
    device: str = param(D["device"], help="device of Algorithm 1: cpu, cuda or auto")

    def transformer(self, seed: int = 0):
        """The :class:`~nascore_nat.transformer.NeuralArchitectureTransformer` these parameters describe."""
        from .transformer import NeuralArchitectureTransformer

        return NeuralArchitectureTransformer(
            policy=self.policy, epochs=self.epochs, C=self.C, layers=self.layers, batch_size=self.batch_size,
            theta_lr=self.theta_lr, entropy_weight=self.entropy_weight, entropy_floor=self.entropy_floor,
            m=self.m, n=self.n, inputs=self.inputs, input_fraction=self.input_fraction,
            warmup_epochs=self.warmup_epochs, max_cost_ratio=self.max_cost_ratio, device=self.device, seed=seed,
        )

    def compress(self, arch, model, task, ctx) -> Compressed:
        from .genotype_io import arch_from_pair, pair_from_arch

        space = ctx.space
        beta = pair_from_arch(arch, space)
        t0 = time.perf_counter()
        nat = self.transformer(ctx.seed).fit(task, beta, cost_network=(space.C, space.layers),
                                             progress=lambda r: ctx.log(_epoch_line(r, self.epochs), **r))
        fit_seconds = time.perf_counter() - t0

        def cost_fn(pair):
            """The space's own cost view (a multi-scale msranas network as well as a DARTS one)."""
            pair_arch, pair_space = arch_from_pair(pair, space)
            return pair_space.cost(pair_arch, task)

        def build(pair):
            from nascore.api import build_seeded

            pair_arch, pair_space = arch_from_pair(pair, space)
            return build_seeded(pair_space, pair_arch, task, ctx.seed)

        def train(net, epochs):
            ctx.trainer(epochs=epochs).fit(net, task, seed=ctx.seed)

        def evaluate(net):
            return ctx.trainer().accuracy(net, task.valid)

        from .transformer import calibration_scorer

        # the run's training, seeded weights: scratch or fine-tuned from the input (calibrate_init)
        score = calibration_scorer(self.calibrate_init, beta, build, train, evaluate, epochs=self.calibrate_epochs,
                                   finetune_epochs=self.finetune_epochs)

        t1 = time.perf_counter()
        alpha, info = nat.transform(beta, task, mode=self.inference, samples=self.samples, seed=ctx.seed,
                                    cost_fn=cost_fn, score=score, calibrate_top=self.calibrate_top)
        infer_seconds = time.perf_counter() - t1
        alpha_arch, out_space = arch_from_pair(alpha, space)
        before, after = cost_fn(beta), cost_fn(alpha)
        before["shared_valid_accuracy"] = nat.shared_accuracy(beta, task.valid)
        after["shared_valid_accuracy"] = nat.shared_accuracy(alpha, task.valid)
        new_model = self._accuracies(arch, alpha_arch, space, out_space, model, task, ctx, before, after,
                                     changed=alpha != beta)
        info.update(
            genotype_before=beta.to_json(), genotype_after=alpha.to_json(), history=nat.history_,
            policy_seconds=fit_seconds, inference_seconds=infer_seconds,
            space={"name": "darts", **_space_params(out_space)},
            changed_edges=sum(a != b for x, y in zip(beta.cells, alpha.cells) for a, b in zip(x.ops, y.ops)),
        )
        return Compressed(arch=alpha_arch, model=new_model, before=before, after=after, info=info)

    def _accuracies(self, arch, alpha_arch, space, out_space, model, task, ctx, before, after, *, changed):
        """Fill valid/test accuracy of both networks; returns the optimized network's model."""
        from nascore.api import build_seeded

        trainer = ctx.trainer(**({"epochs": self.retrain_epochs} if self.retrain_epochs else {}))
        if model is None and self.retrain:
            model = build_seeded(space, arch, task, ctx.seed)
            trainer.fit(model, task, seed=ctx.seed)
        if model is not None:
            before.update(valid_accuracy=trainer.accuracy(model, task.valid),
                          test_accuracy=trainer.accuracy(model, task.test))
        if not changed:
            after.update({k: v for k, v in before.items() if k.endswith("accuracy")})
            return model
        if not self.retrain:
            return None
        new_model = build_seeded(out_space, alpha_arch, task, ctx.seed)
        trainer.fit(new_model, task, seed=ctx.seed)
        after.update(valid_accuracy=trainer.accuracy(new_model, task.valid),
                     test_accuracy=trainer.accuracy(new_model, task.test))
        return new_model


def _epoch_line(record: dict, epochs: int) -> str:
    if record.get("warmup"):
        return f"nat warm-up on the input cell: supernet loss {record['w_loss']:.3f} ({record['seconds']:.1f}s)"
    text = f"nat epoch {record['epoch']}/{epochs}: supernet loss {record['w_loss']:.3f}"
    if "mean_advantage" in record:
        text += f", mean reward {record['mean_advantage']:+.4f}, policy entropy {record['entropy']:.2f}"
    return text + f" ({record['seconds']:.1f}s)"


def _space_params(space) -> dict:
    from nascore.api import resolved_params

    return resolved_params(space)
