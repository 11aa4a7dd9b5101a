"""A finished run directory back as a trained network, and its anytime report
(``nascore msranas anytime DIR``)."""

from __future__ import annotations

import json
from pathlib import Path

from nascore.api import ConfigError, RunStoreError, add_run_figure


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RunStoreError(f"cannot read {path}: {exc}") from None


def load_trained(run_dir) -> dict:
    """``space``, ``arch``, ``task`` and the trained ``model`` of a finished run: the
    resolved config rebuilds space and task, ``result.json`` names the best genome and
    ``best.pt`` holds its weights (loaded with ``weights_only=True``)."""
    import torch

    import nascore
    from nascore.api import load_task
    from nascore.api import read_config

    run_dir = Path(run_dir)
    if not (run_dir / "result.json").is_file():
        raise RunStoreError(f"{run_dir} holds no finished run (no result.json); run a search first")
    if not (run_dir / "best.pt").is_file():
        raise RunStoreError(f"{run_dir} has no trained weights (best.pt); the final training did not finish")
    config = read_config(run_dir)
    best = _read_json(run_dir / "result.json").get("best")
    if not best or "space" not in config or "task" not in config:
        raise RunStoreError(f"{run_dir}: result.json has no best architecture or config.toml lacks [space]/[task]")
    params = dict(config["space"])
    space = nascore.create("search_space", params.pop("name"), **params)
    task = load_task(config["task"])
    arch = space.make(best["genome"])
    model = space.build(arch, task)
    try:
        model.load_state_dict(torch.load(run_dir / "best.pt", weights_only=True, map_location="cpu"))
    except RuntimeError as exc:
        raise RunStoreError(f"{run_dir}/best.pt does not fit the network of [space]: {str(exc)[:200]}") from None
    return {"space": space, "arch": arch, "task": task, "model": model.eval(), "config": config}


def anytime_report(run_dir, split: str = "test", latency_repeats: int = 10) -> dict:
    """Per-exit table and summary (Eq. 4 area, confidence-threshold curve) of a run's
    trained network on ``split``; writes ``msranas_anytime_<split>.json`` and ``.png``
    into the run directory and adds the plot to its report."""
    from .anytime import anytime_table, exit_probabilities, summarize
    from .plots import plot_anytime

    if split not in ("test", "valid"):
        raise ConfigError(f"split must be 'test' or 'valid', got {split!r}")
    run_dir = Path(run_dir)
    run = load_trained(run_dir)
    data = getattr(run["task"], split)
    rows = anytime_table(run["model"], data, run["task"].input_shape, latency_repeats=latency_repeats)
    probs = exit_probabilities(run["model"], data.X)
    summary = summarize(rows, probs.numpy(), data.y.numpy())
    report = {"run_dir": str(run_dir), "split": split, "key": run["arch"].key, "table": rows, "summary": summary}
    (run_dir / f"msranas_anytime_{split}.json").write_text(json.dumps(report, indent=1))
    png = plot_anytime({"searched cell": rows}, run_dir / f"msranas_anytime_{split}.png",
                       thresholds={"searched cell": summary["threshold_curve"]},
                       title=f"Anytime prediction ({split} split)")
    add_run_figure(run_dir, png, f"MS-RANAS anytime prediction on the {split} split")
    return report
