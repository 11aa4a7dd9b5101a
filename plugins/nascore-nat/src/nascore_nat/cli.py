"""``nascore nat optimize GENOTYPE --task ...`` and ``nascore nat genotypes``."""

from __future__ import annotations

import json

import click

from .defaults import DEFAULTS as D

#: channels and cells of the networks ``optimize`` trains when the input has no space (CPU-sized)
DEFAULT_NETWORK = {"C": 8, "layers": 5}


def _context(space, task, *, seed: int, device: str, train_epochs: int, quiet: bool):
    from nascore.api import resolved_params
    from nascore.api import Console, SearchContext

    config = {"seed": seed, "budget": 0, "device": device, "metric": "valid_accuracy",
              "space": {"name": "darts", **resolved_params(space)},
              "evaluator": {"name": "train", "epochs": train_epochs}}
    return SearchContext(config=config, space=space, evaluator=None, task=task, console=Console(quiet=quiet))


def _table(before: dict, after: dict) -> str:
    rows = [("params", "params", "{:,.0f}"), ("MAdds", "flops", "{:,.0f}"),
            ("valid accuracy %", "valid_accuracy", "{:.2f}"), ("test accuracy %", "test_accuracy", "{:.2f}"),
            ("shared-weight valid acc. %", "shared_valid_accuracy", "{:.2f}")]
    lines = [f"{'':28}{'before':>14}{'after':>14}"]
    for label, key, fmt in rows:
        b, a = before.get(key), after.get(key)
        cell = [("-" if v is None else fmt.format(v)) for v in (b, a)]
        lines.append(f"{label:28}{cell[0]:>14}{cell[1]:>14}")
    return "\n".join(lines)


def optimize_command(genotype, dataset, subset, seed, channels, layers, train_epochs, png, as_json, quiet,
                     **nat_params):
    from nascore.api import load_task

    from .cell import CellPair
    from .compressor import NATCompressor
    from .drawing import draw_pairs
    from .genotype_io import load_input

    space_params = {k: v for k, v in (("C", channels), ("layers", layers)) if v is not None}
    pair, space, label = load_input(genotype, defaults=DEFAULT_NETWORK, **space_params)
    task = load_task({"dataset": dataset, "seed": seed, **({"subset": subset} if subset else {})})
    ctx = _context(space, task, seed=seed, device=nat_params["device"], train_epochs=train_epochs,
                   quiet=quiet or as_json)
    arch = space.from_genotype(pair.to_json())
    res = NATCompressor(**nat_params).compress(arch, None, task, ctx)
    after = CellPair.from_json(res.info["genotype_after"])
    path = draw_pairs(pair, after, png or f"nat_{label}.png", titles=(label, f"NAT-{label}"),
                      caption=f"{label} on {dataset}: params {res.before['params']:,} -> {res.after['params']:,}, "
                              f"MAdds {res.before['flops']:,} -> {res.after['flops']:,}")
    if as_json:
        click.echo(json.dumps({**res.to_json(), "png": str(path), "input": label}, indent=1, default=str))
        return
    click.echo(f"optimized genotype of {label}:")
    click.echo(json.dumps(res.info["genotype_after"]))
    click.echo(_table(res.before, res.after))
    click.echo(f"{res.info['changed_edges']} edges changed; policy learned in {res.info['policy_seconds']:.1f}s, "
               f"inference {res.info['inference_seconds']:.1f}s; cells drawn in {path}")


def make_group() -> click.Group:
    @click.group("nat")
    def group():
        """NAT: optimize any cell by turning redundant ops into skip / none connections."""

    @group.command("optimize")
    @click.argument("genotype")
    @click.option("--task", "dataset", default="digits", show_default=True,
                  help="dataset to learn the policy and train on")
    @click.option("--subset", type=click.IntRange(min=1), help="keep this many training samples")
    @click.option("--policy", type=click.Choice(["gcn", "lstm", "random"]), default=D["policy"], show_default=True)
    @click.option("--inference", type=click.Choice(["calibrated", "sampling", "maximum"]), default=D["inference"],
                  show_default=True, help="calibrated: the shared-weight shortlist and the input trained for real, "
                  "best on validation kept; sampling: the paper's best of --samples by shared weights")
    @click.option("--samples", type=click.IntRange(min=1), default=D["samples"], show_default=True,
                  help="candidates drawn from the policy at inference")
    @click.option("--calibrate-top", type=click.IntRange(min=1), default=D["calibrate_top"], show_default=True,
                  help="calibrated inference: candidates trained for real beside the input")
    @click.option("--calibrate-epochs", type=click.IntRange(min=1), default=D["calibrate_epochs"], show_default=True,
                  help="calibrated inference: epochs of that training")
    @click.option("--calibrate-init", type=click.Choice(["scratch", "inherit"]), default=D["calibrate_init"],
                  show_default=True, help="calibrated inference: candidates trained from seeded weights, or "
                  "fine-tuned from the input's trained weights")
    @click.option("--finetune-epochs", type=click.IntRange(min=1), default=D["finetune_epochs"], show_default=True,
                  help="calibrated inference with --calibrate-init inherit: epochs of fine-tuning")
    @click.option("--epochs", type=click.IntRange(min=1), default=D["epochs"], show_default=True,
                  help="epochs of Algorithm 1")
    @click.option("--batch-size", type=click.IntRange(min=1), default=D["batch_size"], show_default=True,
                  help="mini-batch size of Algorithm 1")
    @click.option("--theta-lr", type=click.FloatRange(min=0.0, min_open=True), default=D["theta_lr"],
                  show_default=True, help="Adam learning rate of the policy")
    @click.option("--entropy-weight", type=click.FloatRange(min=0.0), default=D["entropy_weight"], show_default=True,
                  help="lambda of the entropy regularizer (Eq. 4)")
    @click.option("--entropy-floor", type=click.FloatRange(0.0, 1.0), default=D["entropy_floor"], show_default=True,
                  help="collapse guard: fraction of the uniform policy's entropy (0 disables)")
    @click.option("--m", "m", type=click.IntRange(min=1), default=D["m"], show_default=True,
                  help="input architectures per policy step")
    @click.option("--n", "n", type=click.IntRange(min=1), default=D["n"], show_default=True,
                  help="sampled architectures per input per policy step")
    @click.option("--inputs", type=click.Choice(["neighbourhood", "space"]), default=D["inputs"], show_default=True,
                  help="p(beta) while training the transformer")
    @click.option("--input-fraction", type=click.FloatRange(0.0, 1.0), default=D["input_fraction"],
                  show_default=True, help="share of the supernet's draws that are the input cell")
    @click.option("--warmup-epochs", type=click.IntRange(min=0), default=D["warmup_epochs"], show_default=True,
                  help="epochs training the supernet on the input cell before Algorithm 1")
    @click.option("--max-cost-ratio", type=click.FloatRange(min=1.0), default=D["max_cost_ratio"], show_default=True,
                  help="allowed params and MAdds of the output as a multiple of the input's (1: never more)")
    @click.option("--train-epochs", type=click.IntRange(min=1), default=10, show_default=True,
                  help="epochs of training each network from scratch")
    @click.option("--C", "channels", type=click.IntRange(min=2),
                  help="initial channels of the trained networks (default: a run's own, else 8)")
    @click.option("--layers", type=click.IntRange(min=3),
                  help="cells of the trained networks (default: a run's own, else 5)")
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("--device", default=D["device"], show_default=True, help="cpu, cuda or auto")
    @click.option("--no-retrain", is_flag=True, help="skip training the networks from scratch (no accuracies)")
    @click.option("--png", type=click.Path(dir_okay=False), help="drawing of both cells (default nat_GENOTYPE.png)")
    @click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
    @click.option("--quiet", is_flag=True, help="no progress lines")
    def optimize(genotype, no_retrain, **options):
        """Optimize GENOTYPE: a published cell (DARTS_V2, ENAS, NAONet, VGG, ResNet, MobileNetV2, ...),
        a JSON genotype or architecture file, or a run directory of a 'darts'-space search."""
        optimize_command(genotype, retrain=not no_retrain, **options)

    @group.command("genotypes")
    def list_genotypes():
        """List the published genotypes shipped with nascore-nat and their sources."""
        from . import genotypes

        for name in genotypes.names():
            click.echo(f"{name:14} {genotypes.source(name)}")

    return group
