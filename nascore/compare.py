"""Compare runs side by side: a table of what each found and what it cost, and the
best-so-far curves overlaid in one plot (``nascore compare``)."""

from __future__ import annotations

import math
from pathlib import Path

from .errors import ConfigError
from .report import _acc, load_run
from .results import OK


def summarize(run_dir: Path, metric: str = "valid_accuracy") -> dict:
    """One row of the comparison: best candidate, its cost, the search's cost."""
    data = load_run(run_dir)
    evals = data.evaluations
    result = data.result
    best = result.get("best") or {}
    m = best.get("metrics", {})
    final = (result.get("stages") or [{}])[-1].get("after", {}) if result.get("stages") else {}
    search_seconds = sum(float(e.metric("train_seconds") or 0.0) for e in evals)
    return {
        "run": str(run_dir),
        "name": (result.get("config") or {}).get("name") or Path(run_dir).name,
        "optimizer": ((result.get("config") or {}).get("optimizer") or {}).get("name"),
        "best_key": best.get("key"),
        "valid_accuracy": m.get("valid_accuracy"),
        "test_accuracy": m.get("test_accuracy"),
        "params": m.get("params"),
        "flops": m.get("flops"),
        "final": {k: final.get(k) for k in ("test_accuracy", "params", "flops") if k in final} or None,
        "evaluations": len(evals),
        "failed": sum(e.status == "failed" for e in evals),
        "stopped": sum(e.status == "stopped" for e in evals),
        "epochs_trained": sum(int(e.metric("epochs") or 0) for e in evals),
        "search_train_seconds": search_seconds,
        "wall_seconds": result.get("wall_seconds"),
        "baseline": result.get("baseline"),
        "best_so_far": best_so_far(evals),
    }


def best_so_far(evals) -> list[float | None]:
    out, best = [], -math.inf
    for e in evals:
        a = _acc(e) if e.status == OK else None
        if a is not None:
            best = max(best, a)
        out.append(best if best > -math.inf else None)
    return out


def run_or_load(targets, out_root: Path | None = None, quiet: bool = True) -> list[Path]:
    """Run directories for ``targets``: a directory is used as is, a TOML config is run."""
    from .driver import run_pipeline

    dirs = []
    for t in targets:
        p = Path(t)
        if p.is_dir():
            dirs.append(p)
        elif p.is_file() and p.suffix == ".toml":
            result = run_pipeline(p, out=_free_dir(out_root or Path("runs"), f"compare-{p.stem}"), quiet=quiet)
            dirs.append(Path(result["run_dir"]))
        else:
            raise ConfigError(f"{t!r} is neither a run directory nor a .toml config")
    if not dirs:
        raise ConfigError("compare needs at least one run directory or config")
    return dirs


def _free_dir(root: Path, name: str) -> Path:
    """``root/name``, or ``root/name-2``, ``-3``... when taken: a second compare of the
    same config stays under the ``--out`` it was given."""
    path, i = root / name, 2
    while path.exists():
        path, i = root / f"{name}-{i}", i + 1
    return path


def plot_curves(rows: list[dict], path: Path) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    for r in rows:
        ys = r["best_so_far"]
        xs = [i + 1 for i, y in enumerate(ys) if y is not None]
        ax.step(xs, [y for y in ys if y is not None], where="post", label=r["name"])
    ax.set(xlabel="evaluation", ylabel="best validation accuracy (%)", title="Best so far")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.savefig(path)
    return path
