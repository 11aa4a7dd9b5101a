"""``nascore steerage`` commands: compare the accuracy-predictor regressors (Fig. 3)."""

from __future__ import annotations

import json

import click


@click.group("steerage")
def steerage():
    """STEERAGE tools (Hassantabar, Dai and Jha): accuracy-predictor comparison."""


@steerage.command("compare-regressors")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=str))
@click.option("--metric", default="valid_accuracy", show_default=True, help="metric the regressors predict")
@click.option("--only", "names", multiple=True, help="regressor to include (repeatable; default: all six)")
@click.option("--n-estimators", default=500, show_default=True, type=click.IntRange(1),
              help="boosting rounds of the boosted trees")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def compare_regressors_cmd(run_dir, metric, names, n_estimators, seed, as_json):
    """Leave-one-out MSE of six regressors on the trained architectures of RUN_DIR."""
    from .regressors import REGRESSORS, compare_regressors, run_dataset

    bad = [n for n in names if n not in REGRESSORS]
    if bad:
        raise click.UsageError(f"unknown regressor {bad[0]!r}; choose from {', '.join(REGRESSORS)}")
    X, y, space = run_dataset(run_dir, metric)
    result = compare_regressors(X, y, names or REGRESSORS, seed=seed, n_estimators=n_estimators)
    if as_json:
        click.echo(json.dumps({"run": run_dir, "space": space.name, "samples": len(y), "metric": metric,
                               "regressors": result}, indent=1))
        return
    click.echo(f"{len(y)} architectures of space {space.name!r}, target {metric} (leave-one-out)")
    click.echo(f"{'regressor':<18}{'LOO MSE':>12}{'Kendall tau':>13}{'seconds':>10}")
    for name, r in sorted(result.items(), key=lambda kv: kv[1]["loo_mse"]):
        click.echo(f"{name:<18}{r['loo_mse']:>12.4f}{r['kendall_tau']:>13.3f}{r['seconds']:>10.1f}")
