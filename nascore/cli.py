"""The ``nascore`` command line: a thin layer over the Python API.

Every :class:`nascore.errors.NascoreError` becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .errors import NascoreError


def _echo_json(data) -> None:
    click.echo(json.dumps(data, indent=1, default=str))


class NascoreGroup(click.Group):
    """Turns nascore errors into one clear line and exit status 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except NascoreError as exc:
            click.echo(f"nascore: error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=NascoreGroup)
@click.version_option(package_name="nascore")
def cli():
    """nascore: search, predict, sample and compress neural architectures with plugins."""


@cli.command()
@click.argument("config", type=click.Path(dir_okay=False), required=False)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="override a config value (dotted key)")
@click.option("--out", type=click.Path(), help="run directory (default runs/NAME-TIME)")
@click.option("--resume", type=click.Path(), help="resume the run in this directory")
@click.option("--quiet", is_flag=True, help="no progress or log lines")
@click.option("--json", "as_json", is_flag=True, help="JSON log lines on stderr and the result summary on stdout")
@click.option("--report/--no-report", "report", default=None,
              help="write report.html with plots (default: the config's report key, else yes)")
def run(config, sets, out, resume, quiet, as_json, report):
    """Run the pipeline described by CONFIG (a TOML file), or resume one."""
    from .driver import run_pipeline

    if resume and config:
        raise click.UsageError("give either CONFIG or --resume DIR, not both")
    if not resume and not config:
        raise click.UsageError("missing CONFIG (or --resume DIR)")
    if report is None:  # the CLI writes the report unless the config or --no-report says not to
        from . import config as cfg

        loaded = cfg.load(Path(resume) / "config.toml") if resume else cfg.apply_overrides(cfg.load(config), sets, notes=[])
        report = bool(loaded.get("report", True))
    result = run_pipeline(config, out=resume or out, resume=bool(resume), sets=sets,
                          quiet=quiet, json_logs=as_json, report=report)
    summary = _summary(result)
    if as_json:
        _echo_json(summary)
        return
    best = result.get("best")
    if best:
        m = best["metrics"]
        click.echo(f"best {best['key']}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in m.items() if k in _SHOWN))
    baseline = _baseline_line(result)
    if baseline:
        click.echo(baseline)
    for st in result.get("stages", []):
        a = st.get("after", {})
        click.echo(f"after {st['compressor']}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in a.items() if k in _SHOWN))
    click.echo(f"{summary['evaluations']} evaluations in {result['wall_seconds']:.1f}s; run directory: {summary['run_dir']}")


_SHOWN = ("valid_accuracy", "test_accuracy", "params", "flops", "latency_ms", "train_seconds", "epochs")


def _table_console():
    """A console for tables: the terminal's width, or 200 columns when piped (rich's 80
    would squeeze a wide table into ellipses)."""
    import sys

    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=200)


def _baseline_line(result: dict) -> str | None:
    """``baseline KEY: metrics`` of a run that has a ``[baseline]`` (None otherwise), so a
    best just above it is not read as a finding."""
    base = (result or {}).get("baseline")
    if not base:
        return None
    m = base.get("metrics") or {}
    shown = ", ".join(f"{k}={_fmt(v)}" for k, v in m.items() if k in _SHOWN)
    return f"baseline {base.get('key')}: {shown or base.get('status', '')}"


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _summary(result: dict) -> dict:
    return {
        "best": result.get("best"),
        "stages": result.get("stages", []),
        "evaluations": len(result.get("evaluations", [])),
        "counts": result.get("counts"),
        "wall_seconds": result.get("wall_seconds"),
        "run_dir": result.get("run_dir"),
    }


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def plugins(as_json):
    """List loaded plugins (with version and hooks) and plugins that failed to load."""
    from .plugins import failures, plugin_infos

    infos = plugin_infos()
    fails = failures()
    if as_json:
        _echo_json({
            "plugins": [{"name": p.name, "distribution": p.distribution, "version": p.version,
                         "hooks": list(p.hooks), "builtin": p.builtin,
                         "registered": [{"kind": k, "name": n} for k, n in p.registered]} for p in infos],
            "failed": [{"name": f.name, "distribution": f.distribution, "error": f.error} for f in fails],
        })
        return
    for p in infos:
        click.echo(f"{p.name:28} {p.distribution or '-':20} {p.version or '-':10} {', '.join(p.hooks)}")
    for f in fails:
        click.echo(f"{f.name:28} FAILED: {f.error}")


@cli.command("list")
@click.argument("kind", required=False)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--markdown", is_flag=True, help="the full parameter reference as markdown (docs/components.md)")
def list_(kind, as_json, markdown):
    """List registered components, optionally of one KIND (search_space, optimizer, ...,
    or operation for the cell operations of ``register_operations``)."""
    from .plugins import get_operations, get_registry

    if markdown:
        from .reference import components_markdown

        click.echo(components_markdown())
        return

    ops_only = kind in _OPERATION_KINDS
    comps = [] if ops_only else get_registry().components(kind)
    rows = [(c.kind, c.name, c.plugin, c.description) for c in comps]
    if kind is None or ops_only:
        rows += [("operation", op.name, op.plugin, op.description) for op in get_operations()]
    if as_json:
        _echo_json([dict(zip(("kind", "name", "plugin", "description"), r)) for r in rows])
        return
    for k, name, plugin, description in rows:
        click.echo(f"{k:13} {name:24} {plugin:14} {description}")


#: spellings of ``nascore list KIND`` that list the cell operations
_OPERATION_KINDS = ("operation", "operations", "op", "ops")


@cli.command()
@click.argument("kind")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def describe(kind, name, as_json):
    """Show the parameters of component NAME of KIND."""
    from .plugins import get_registry

    comp = get_registry().get(kind, name)
    params = comp.params()
    if as_json:
        _echo_json({"kind": comp.kind, "name": comp.name, "plugin": comp.plugin, "description": comp.description,
                    "params": [{"name": p.name, "type": p.type, "default": p.default, "help": p.help,
                                "required": p.required} for p in params]})
        return
    click.echo(f"{comp.kind} {comp.name!r} from plugin {comp.plugin!r}: {comp.description}")
    if not params:
        click.echo("  (no parameters)")
    for p in params:
        default = "required" if p.required else f"default {p.default!r}"
        click.echo(f"  {p.name} ({p.type}, {default}): {p.help}")


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--top", default=10, show_default=True, help="rows to show")
def show(run_dir, as_json, top):
    """Print a table of the evaluations of RUN_DIR, best first."""
    from .rundir import run_table

    rows, meta = run_table(Path(run_dir))
    if as_json:
        _echo_json({"run": meta, "evaluations": rows})
        return
    from rich.table import Table

    table = Table(title=f"{run_dir}: {meta['evaluations']} evaluations ({meta['counts']})")
    for col in ("#", "key", "status", "valid", "test", "params", "flops", "epochs", "tokens"):
        table.add_column(col)
    for r in rows[:top]:
        m = r["metrics"]
        table.add_row(str(r["number"]), r["key"], r["status"], _fmt(m.get("valid_accuracy")), _fmt(m.get("test_accuracy")),
                      _fmt(m.get("params")), _fmt(m.get("flops")), _fmt(m.get("epochs")), " ".join(r.get("tokens") or [])[:60])
    _table_console().print(table)
    baseline = _baseline_line({"baseline": meta.get("baseline")})
    if baseline:
        click.echo(baseline)


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
def report(run_dir):
    """(Re)write RUN_DIR/report.html with its plots."""
    from .rundir import require_run_dir
    from .report import write_report

    path = write_report(require_run_dir(Path(run_dir)))
    click.echo(str(path))


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["torchscript", "onnx", "json"]), default="json", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="output file (default in RUN_DIR)")
def export(run_dir, fmt, output):
    """Export the best architecture (json) or its trained network (torchscript, onnx)."""
    from .export import export as do_export
    from .rundir import require_run_dir

    path = do_export(require_run_dir(Path(run_dir)), fmt, output)
    click.echo(str(path))


@cli.command()
@click.argument("targets", nargs=-1, required=True)
@click.option("--plot", type=click.Path(dir_okay=False), help="write the overlaid best-so-far curves to this PNG")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--out", type=click.Path(file_okay=False), help="where configs given as TARGETS are run (default runs/)")
def compare(targets, plot, as_json, out):
    """Compare runs side by side; TARGETS are run directories or TOML configs (run first)."""
    from .compare import plot_curves, run_or_load, summarize

    rows = [summarize(d) for d in run_or_load(targets, Path(out) if out else None)]
    if plot:
        plot_curves(rows, Path(plot))
    if as_json:
        _echo_json(rows)
        return
    from rich.table import Table

    table = Table(title="nascore compare")
    with_baseline = any(r.get("baseline") for r in rows)
    for col in ("run", "optimizer", "valid", "test", *(("baseline valid", "baseline test") if with_baseline else ()),
                "params", "flops", "evals", "failed", "stopped", "epochs", "train s", "wall s"):
        table.add_column(col)
    for r in rows:
        base = (r.get("baseline") or {}).get("metrics") or {}
        table.add_row(r["name"], str(r["optimizer"]), _fmt(r["valid_accuracy"]), _fmt(r["test_accuracy"]),
                      *((_fmt(base.get("valid_accuracy")), _fmt(base.get("test_accuracy"))) if with_baseline else ()),
                      _fmt(r["params"]), _fmt(r["flops"]), str(r["evaluations"]), str(r["failed"]),
                      str(r["stopped"]), str(r["epochs_trained"]), _fmt(r["search_train_seconds"]),
                      _fmt(r["wall_seconds"]))
    _table_console().print(table)


@cli.command()
@click.argument("config", type=click.Path(dir_okay=False), required=False)
@click.option("--arm", "arms", multiple=True, required=True, metavar="ARM",
              help="NAME=CONFIG.toml[,key=value...] or, with CONFIG, NAME:key=value,... (repeat per arm)")
@click.option("--seeds", default="5", show_default=True, metavar="K|S1,S2,...",
              help="number of seeds (SEED0..SEED0+K-1) or an explicit comma-separated list")
@click.option("--seed0", default=0, show_default=True, help="first study seed when --seeds is a count")
@click.option("--reference", help="arm every other arm is compared against (default: the first)")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="override applied to every arm")
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="study directory (run the same command again to resume)")
@click.option("--quiet", is_flag=True, help="no progress lines from the runs")
@click.option("--json", "as_json", is_flag=True, help="print study.json instead of the table")
def study(config, arms, seeds, seed0, reference, sets, out, quiet, as_json):
    """Run ARMs x seeds paired by seed; mean ± standard error per arm, paired z and
    Wilcoxon p against the reference arm (OUT/study.json, OUT/best_so_far.png).

    Each arm-seed pair is a run directory OUT/ARM/seed-S whose run seed is S."""
    import shlex

    from .errors import ConfigError
    from .study import parse_arm, run_study

    try:
        seed_arg = int(seeds) if "," not in seeds else [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds expects a count or a comma-separated list of integers, got {seeds!r}") from None
    parsed = [parse_arm(a, config) for a in arms]
    command = " ".join(shlex.quote(a) for a in ["nascore", *sys.argv[1:]])
    data = run_study(parsed, seed_arg, Path(out), reference=reference, sets=sets, seed0=seed0,
                     quiet=quiet, command=command)
    if as_json:
        _echo_json(data)
        return
    from rich.table import Table

    table = Table(title=f"nascore study {out}: {len(data['provenance']['seeds'])} seeds, mean ± se")
    table.add_column("arm")
    shown = [m for m in ("valid_accuracy", "test_accuracy", "final_test_accuracy", "params", "wall_seconds")
             if m in data["metrics"]]
    for m in shown:
        table.add_column(m)
    for a in data["runs"]:
        cells = []
        for m in shown:
            s = data["metrics"][m][a]
            cells.append(f"{_fmt(s['mean'])} ± {_fmt(s['se'])}")
        table.add_row(a, *cells)
    _table_console().print(table)
    ctable = Table(title=f"paired against {data['reference']}")
    for col in ("arm", "metric", "n", "diff", "se", "z", "wilcoxon p"):
        ctable.add_column(col)
    for c in data["comparisons"]:
        ctable.add_row(c["arm"], c["metric"], str(c["n"]), _fmt(c["diff_mean"]), _fmt(c["diff_se"]),
                       _fmt(c["z"]), _fmt(c["p_value"]))
    _table_console().print(ctable)
    click.echo(f"study directory: {out}")


def _add_plugin_commands() -> None:
    from .plugins import add_commands

    add_commands(cli)  # through pluggy, one plugin at a time: a broken one is reported, not fatal


def main(argv=None) -> None:
    try:
        _add_plugin_commands()
    except NascoreError as exc:
        click.echo(f"nascore: error: {exc}", err=True)
        sys.exit(2)
    cli.main(args=argv, prog_name="nascore")


if __name__ == "__main__":
    main()
