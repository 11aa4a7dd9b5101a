"""``nascore msranas search`` and ``nascore msranas anytime DIR``."""

from __future__ import annotations

import copy
import json

import click

#: the search ``nascore msranas search`` runs without a CONFIG: small enough for a laptop
#: CPU on digits (examples/msranas_digits.toml is the same run as a file)
DEFAULT_CONFIG = {
    "name": "msranas-digits", "seed": 0, "budget": 1, "device": "auto",
    "task": {"dataset": "digits", "seed": 0},
    "space": {"name": "msranas", "nodes": 2, "C": 8, "layers": 7, "scales": 3, "exits": True},
    "optimizer": {"name": "msranas", "epochs": 10, "batch_size": 128, "search_scales": 3, "search_layers": 4,
                  "search_channels": 4, "search_exits": True, "search_cutout": 4, "order": "first"},
    "evaluator": {"name": "train", "epochs": 30, "batch_size": 64, "lr": 0.05, "cutout": 4},
}


def _config(config_path, dataset, epochs, order):
    from nascore.api import load_config as load

    config = load(config_path) if config_path else copy.deepcopy(DEFAULT_CONFIG)
    if dataset:
        config["task"] = {"dataset": dataset, "seed": config.get("task", {}).get("seed", 0)}
    if epochs is not None:
        config.setdefault("optimizer", {"name": "msranas"})["epochs"] = epochs
    if order:
        config.setdefault("optimizer", {"name": "msranas"})["order"] = order
    if config.get("optimizer", {}).get("name") not in ("msranas", "msranas:msranas"):
        raise click.UsageError("the config's [optimizer] must be name = 'msranas'; use 'nascore run' otherwise")
    return config


def _print_table(rows: list[dict], summary: dict) -> None:
    click.echo(f"{'exit':>4} {'accuracy':>9} {'MFLOPs':>9} {'params':>9} {'latency ms':>11}")
    for r in rows:
        lat = r.get("latency_ms")
        click.echo(f"{r['exit']:>4} {r['accuracy']:>9.2f} {r['flops'] / 1e6:>9.3f} {r['params']:>9} "
                   f"{'-' if lat is None else f'{lat:.3f}':>11}")
    click.echo(f"first exit: {summary['first_accuracy']:.2f}% with {100 * summary['first_flops_share']:.1f}% of "
               f"the MFLOPs ({summary['gap_points']:+.2f} points to the last); area score {summary['area']:.2f}")


def make_group() -> click.Group:
    @click.group("msranas")
    def group():
        """MS-RANAS: multi-scale differentiable cell search with early exits."""

    @group.command("search")
    @click.argument("config", type=click.Path(dir_okay=False), required=False)
    @click.option("--dataset", help="dataset of the [task] table (default: the config's, digits without one)")
    @click.option("--epochs", type=click.IntRange(min=1), help="search epochs")
    @click.option("--order", type=click.Choice(["first", "second"]), help="bilevel approximation order")
    @click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="override a config value (dotted key)")
    @click.option("--out", type=click.Path(file_okay=False), help="run directory (default runs/NAME-TIME)")
    @click.option("--quiet", is_flag=True, help="no progress or log lines")
    def search(config, dataset, epochs, order, sets, out, quiet):
        """Search cells, train the multi-exit network and print its anytime table."""
        import nascore

        result = nascore.run(_config(config, dataset, epochs, order), out=out, sets=sets, quiet=quiet)
        info = result.get("info", {})
        click.echo("genotype: " + json.dumps(info.get("genotype")))
        anytime = info.get("anytime")
        if anytime:
            _print_table(anytime["table"], anytime["summary"])
        cost = info.get("search_cost", {})
        if cost.get("ratio"):
            click.echo(f"search {cost['search_seconds']:.1f} s; one search epoch = {cost['ratio']:.2f} x one epoch "
                       "of the final network")

    @group.command("anytime")
    @click.argument("run_dir", type=click.Path(file_okay=False))
    @click.option("--split", type=click.Choice(["test", "valid"]), default="test", show_default=True)
    @click.option("--latency-repeats", type=click.IntRange(min=0), default=10, show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
    def anytime(run_dir, split, latency_repeats, as_json):
        """Per-exit accuracy, MFLOPs, params and latency of a finished run (plot into its report)."""
        from .runs import anytime_report

        report = anytime_report(run_dir, split=split, latency_repeats=latency_repeats)
        if as_json:
            click.echo(json.dumps(report, indent=1))
            return
        _print_table(report["table"], report["summary"])
        click.echo(f"written: {run_dir}/msranas_anytime_{split}.json, .png (added to report.html)")

    return group
