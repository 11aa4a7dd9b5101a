"""Read a run directory (also while a run is writing it): evaluations and summary."""

from __future__ import annotations

from pathlib import Path

from .errors import RunStoreError
from .results import Evaluation


def require_run_dir(run_dir: Path) -> Path:
    run_dir = Path(run_dir)
    if not (run_dir / "run.sqlite").is_file():
        raise RunStoreError(f"{run_dir} is not a run directory (no run.sqlite)")
    return run_dir


def read_evaluations(run_dir: Path) -> list[Evaluation]:
    """All evaluations in completion order, read-only (works while a run holds the lock)."""
    from .store import RunStore

    with RunStore(require_run_dir(run_dir), create=False, readonly=True) as store:
        return store.evaluations()


def read_config(run_dir: Path) -> dict:
    import tomllib

    path = Path(run_dir) / "config.toml"
    return tomllib.loads(path.read_text()) if path.is_file() else {}


def run_table(run_dir: Path, metric: str = "valid_accuracy") -> tuple[list[dict], dict]:
    """Rows (best first by ``metric``) and a summary of the run."""
    evals = read_evaluations(run_dir)
    config = read_config(run_dir)
    tokens_of = _tokenizer(config)
    rows = []
    for e in evals:
        row = e.to_json()
        row["number"] = (e.index or 0) + 1  # the evaluation's number in the log and the report
        row["tokens"] = tokens_of(e)
        rows.append(row)
    rows.sort(key=lambda r: (r["status"] != "ok", -(r["metrics"].get(metric) or float("-inf"))))
    counts = {s: sum(e.status == s for e in evals) for s in ("ok", "failed", "stopped")}
    result_path = Path(run_dir) / "result.json"
    meta = {"run_dir": str(run_dir), "evaluations": len(evals), "counts": counts,
            "finished": result_path.is_file(), "config": config}
    if result_path.is_file():
        import json

        try:
            baseline = json.loads(result_path.read_text()).get("baseline")
        except ValueError:
            baseline = None
        if baseline:
            meta["baseline"] = baseline
    return rows, meta


def _tokenizer(config: dict):
    space = None
    if "space" in config:
        try:
            from . import create

            params = dict(config["space"])
            space = create("search_space", params.pop("name"), **params)
        except Exception:  # noqa: BLE001 - tokens are a nicety; a missing plugin must not hide the table
            space = None

    def tokens(e: Evaluation):
        if space is None:
            return None
        try:
            return space.tokens(e.arch)
        except Exception:  # noqa: BLE001
            return None

    return tokens


def add_run_figure(run_dir: Path, path, title: str) -> None:
    """Record a figure made after a run (by a plugin's command) in its store, once, and
    rewrite ``report.html`` so the report shows it."""
    from .report import write_report
    from .store import RunStore

    with RunStore(require_run_dir(run_dir), create=False) as store:
        if not any(e.data.get("path") == str(path) for e in store.events("figure")):
            store.event("figure", path=str(path), title=title)
    write_report(run_dir)
