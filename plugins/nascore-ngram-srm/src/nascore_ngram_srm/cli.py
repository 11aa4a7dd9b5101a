"""``nascore ngram ...``: command-line tools of the N-gram/SRM plugin."""

from __future__ import annotations

import json

import click


def parse_ns(text: str) -> list[int]:
    """``"2-8"`` -> [2..8]; ``"3,5,8"`` -> [3, 5, 8]."""
    try:
        if "-" in text:
            lo, hi = (int(p) for p in text.split("-", 1))
            ns = list(range(lo, hi + 1))
        else:
            ns = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise click.UsageError(f"--n expects a range like 2-8 or a list like 3,5,8, got {text!r}") from None
    if not ns or min(ns) < 1:
        raise click.UsageError(f"--n needs values >= 1, got {text!r}")
    return ns


def _space(name: str, sets) -> object:
    import tomllib

    from nascore import create

    params = {}
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep:
            raise click.UsageError(f"--set expects key=value, got {item!r}")
        try:
            params[key.strip()] = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            params[key.strip()] = raw.strip()
    return create("search_space", name, **params)


def _archs_from_runs(run_dirs) -> tuple[object, list]:
    from nascore import create
    from nascore.api import ConfigError
    from nascore.api import read_config, read_evaluations

    space, archs, seen = None, [], set()
    for run_dir in run_dirs:
        table = dict(read_config(run_dir).get("space", {}))
        if not table:
            raise ConfigError(f"{run_dir}: no [space] table in config.toml")
        name = table.pop("name")
        space = space or create("search_space", name, **table)
        for ev in read_evaluations(run_dir):
            if ev.key not in seen:
                seen.add(ev.key)
                archs.append(space.make(ev.genome))
    return space, archs


@click.group()
def ngram():
    """N-gram features of architectures (Section 3 of the N-gram/SRM paper)."""


@ngram.command("table")
@click.option("--space", "space_name", default="metaqnn", show_default=True, help="search space to sample")
@click.option("--set", "space_sets", multiple=True, metavar="KEY=VALUE", help="a space parameter")
@click.option("--archs", "n_archs", type=click.IntRange(1), default=1000, show_default=True,
              help="random architectures to encode (ignored with --run)")
@click.option("--run", "run_dirs", multiple=True, type=click.Path(file_okay=False, exists=True),
              help="encode the architectures of these run directories instead")
@click.option("--n", "ns", default="2-8", show_default=True, help="values of N: a range 2-8 or a list 3,5,8")
@click.option("--granularity", type=click.Choice(["token", "type"]), default="token", show_default=True,
              help="whole tokens (C3-64) or layer kinds (C, P, FC)")
@click.option("--exact", is_flag=True, help="only grams of length exactly N (default: all of 1..N)")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the random architectures")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def table(space_name, space_sets, n_archs, run_dirs, ns, granularity, exact, seed, as_json):
    """Table 1 of the paper: feature-matrix size and sparsity for each N."""
    import numpy as np

    from nascore.api import ConfigError

    from .encoder import has_tokens_view, ngram_table

    ns = parse_ns(ns)
    if run_dirs:
        space, archs = _archs_from_runs(run_dirs)
    else:
        space = _space(space_name, space_sets)
        rng = np.random.default_rng(seed)
        archs = [space.sample(rng) for _ in range(n_archs)]
    if not has_tokens_view(space):
        raise ConfigError(f"space {space.name!r} has no tokens view; ngram needs one (e.g. metaqnn, nb201)")
    rows = ngram_table([space.tokens(a) for a in archs], ns, cumulative=not exact, granularity=granularity)
    if as_json:
        click.echo(json.dumps({"space": space.name, "architectures": len(archs), "granularity": granularity,
                               "cumulative": not exact, "rows": rows}, indent=1))
        return
    click.echo(f"{'N':>3}  {'size of feature matrix':>24}  {'sparsity':>10}")
    for r in rows:
        click.echo(f"{r['n']:>3}  {str(tuple(r['shape'])):>24}  {r['sparsity']:>10.6f}")
