"""The pipeline driver: config -> components -> run -> result.

The driver is the single writer of the run store.  Evaluations run on the executor and
their results are committed the moment they come back.  Resume is replay: a run is
deterministic given its seed and its evaluation results, so ``resume=True`` re-runs the
search with finished evaluations served from the store and continues where it stopped.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from . import config as cfg
from .arch import Architecture
from .console import Console
from .context import SearchContext
from .errors import ConfigError, NascoreError, RunStoreError
from .job import evaluate_job
from .results import SearchResult


def _build(registry, kind: str, table: dict | None, name_key: str = "name"):
    if table is None:
        return None
    params = dict(table)
    name = params.pop(name_key)
    return registry.create(kind, name, **params)


def default_out_dir(name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{name}-{stamp}"
    path, i = base, 1
    while path.exists():
        path, i = Path(f"{base}-{i}"), i + 1
    return path


def prepare(config, *, out=None, resume: bool = False, sets=None) -> tuple[dict, Path | None]:
    """Load, override and resolve a config; for ``resume`` read it back from ``out``."""
    if resume:
        if out is None:
            raise ConfigError("--resume needs the run directory")
        out = Path(out)
        if not (out / "config.toml").is_file():
            raise RunStoreError(f"{out} is not a run directory (no config.toml); nothing to resume")
        if sets:
            raise ConfigError("--set cannot change a run that is resumed; start a new run instead")
        return cfg.resolve(cfg.load(out / "config.toml")), out
    resolved = cfg.resolve(cfg.apply_overrides(cfg.load(config), sets))
    return resolved, (Path(out) if out is not None else None)


def run_pipeline(config, *, out=None, resume: bool = False, sets=None, quiet: bool = True,
                 json_logs: bool = False, write_files: bool = True, report: bool | None = None) -> dict:
    """Run a pipeline; returns the result dict (the content of ``result.json``).

    ``report``: write ``report.html`` and its plots into the run directory.  ``None``
    takes the config's ``report`` key, else False: the API writes no report unless asked
    (``nascore report DIR`` writes it later); the CLI asks for one unless ``--no-report``."""
    from .plugins import get_registry
    from .store import RunStore

    resolved, out = prepare(config, out=out, resume=resume, sets=sets)
    if resume:
        finished = _finished_result(out, quiet, json_logs)
        if finished is not None:
            return finished
    preflight(get_registry(), resolved)  # before anything is written: a bad run leaves no trace
    if out is None and write_files:
        out = default_out_dir(resolved["name"])
    console = Console(quiet=quiet, json_logs=json_logs)
    store = None
    created: list[Path] = []
    if out is not None:
        if out.exists() and not out.is_dir():
            raise RunStoreError(f"cannot write the run directory {out}: it is a file; choose another --out")
        if not resume and (out / "run.sqlite").exists():
            raise RunStoreError(f"{out} already holds a run; resume it with --resume or choose another --out")
        try:
            created = _missing_parents(out)
            out.mkdir(parents=True, exist_ok=True)
            store = RunStore(out, synchronous="NORMAL" if _cheap_evaluator(resolved) else "FULL")
            if resume:
                stored = store.get_meta("config")
                if stored is not None and stored != json.loads(json.dumps(resolved)):
                    store.close()
                    raise RunStoreError(f"{out}/config.toml differs from the configuration stored in run.sqlite")
            else:
                store.set_meta("config", resolved)
                (out / "config.toml").write_text(cfg.dumps(resolved))
        except OSError as exc:
            if store is not None:
                store.close()
            _remove_stub(out, created)
            raise RunStoreError(f"cannot write the run directory {out}: {exc.strerror or exc}; "
                                "choose another --out") from None
        except RunStoreError:
            if store is not None and not resume:
                store.close()
                _remove_stub(out, created)
            raise
    try:
        if report is None:
            report = bool(resolved.get("report", False))
        return _execute(get_registry(), resolved, out, store, console, resume, report)
    except BaseException:
        if store is not None and not resume and len(store) == 0:
            store.close()
            _remove_stub(out, created)  # nothing was evaluated: leave no stub behind
        raise
    finally:
        if store is not None:
            store.close()


def _finished_result(out: Path, quiet: bool, json_logs: bool) -> dict | None:
    """The result of a finished run, read back (resuming it changes nothing on disk); None
    for a run that did not finish (no complete ``result.json``: it is written atomically,
    so a partial one can only come from an older version)."""
    try:
        result = json.loads((out / "result.json").read_text())
    except (OSError, ValueError):
        return None
    Console(quiet=quiet, json_logs=json_logs).log(f"{out} has finished already; nothing to resume")
    return result


def _missing_parents(out: Path) -> list[Path]:
    """``out`` and those of its parents that do not exist yet (deepest first)."""
    missing, p = [], Path(out)
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    return missing


_STUB_FILES = ("config.toml", "run.sqlite", "run.sqlite-wal", "run.sqlite-shm", ".lock")


def _remove_stub(out: Path, created: list[Path]) -> None:
    """Delete what a run that evaluated nothing wrote, and the directories it created."""
    for name in _STUB_FILES:
        try:
            (out / name).unlink()
        except OSError:
            pass
    for d in created:
        try:
            d.rmdir()  # only if empty: never anything the run did not write
        except OSError:
            break


def _space_adds_metrics(space, evaluator) -> bool:
    """Whether the space may add metric names to the evaluator's (``SearchSpace.metrics``
    overridden, and an evaluator that trains); then a metric cannot be checked up front."""
    from .arch import SearchSpace

    own = getattr(type(space), "metrics", None)
    return evaluator.needs_task and own is not None and own is not SearchSpace.metrics


def preflight(registry, resolved: dict) -> None:
    """Check, before the first evaluation, what would make every evaluation fail, and raise
    a :class:`~nascore.errors.ConfigError` (or the dataset's own error) saying what to fix:
    the budget, the dataset (loaded once here, then shared by the run in this process),
    the metric the evaluator produces, and every component's own ``preflight(config,
    space)`` (a tabular file and its columns, cross-parameter rules, ...)."""
    from .errors import did_you_mean

    if resolved["budget"] < 1:
        raise ConfigError(f"budget must be at least 1 evaluation, got {resolved['budget']}")
    space = _build(registry, "search_space", resolved["space"])
    evaluator = _build(registry, "evaluator", resolved["evaluator"])
    compressors = [_build(registry, "compressor", t) for t in resolved.get("compress", [])]
    if evaluator.needs_task or compressors:
        if "task" not in resolved:
            who = (f"the {resolved['evaluator']['name']!r} evaluator" if evaluator.needs_task
                   else f"compressor {resolved['compress'][0]['name']!r}")
            raise ConfigError(f"{who} needs a dataset: add a [task] table, e.g. dataset = \"digits\"")
        from .data import load_task

        load_task(resolved["task"])  # a missing dataset is one error here, not one per evaluation
    produced = getattr(evaluator, "produces", None)
    metric = resolved.get("metric", "valid_accuracy")
    if produced is not None and metric not in produced and not _space_adds_metrics(space, evaluator):
        raise ConfigError(f"metric {metric!r} is not produced by the {resolved['evaluator']['name']!r} evaluator;"
                          f"{did_you_mean(metric, produced)} it produces: {', '.join(sorted(produced))}")
    components = [space, evaluator, _build(registry, "optimizer", resolved["optimizer"]),
                  _build(registry, "sampler", resolved.get("sampler")), *compressors]
    # "cuda" on a machine without CUDA: one line now, not one failure per candidate
    # ("auto" and "cpu" always resolve, and need no torch import)
    from .device import resolve_device

    devices = [resolved["device"]]
    for section in ("evaluator", "optimizer", "sampler", "compress"):
        tables = resolved.get(section) or []
        devices += [t.get("device") for t in (tables if isinstance(tables, list) else [tables])]
    for device in devices:
        if isinstance(device, str) and device not in ("auto", "cpu"):
            resolve_device(device)
    for component in components:
        check = getattr(component, "preflight", None)
        if callable(check):
            check(resolved, space)


def _cheap_evaluator(resolved: dict) -> bool:
    """Whether the run's evaluator declares ``cheap`` (an evaluation costs less than an
    fsync, e.g. a table lookup): its store then commits rows without fsync (RunStore.relax_sync)."""
    from .params import component_class
    from .plugins import get_registry

    try:
        factory = get_registry().get("evaluator", resolved["evaluator"]["name"]).factory
        return bool(getattr(component_class(factory), "cheap", False))
    except Exception:  # noqa: BLE001 - an unknown evaluator is reported by preflight, not here
        return False


def _execute(registry, resolved: dict, out: Path | None, store, console: Console, resume: bool,
             report: bool = False) -> dict:
    t0 = time.time()
    space = _build(registry, "search_space", resolved["space"])
    evaluator = _build(registry, "evaluator", resolved["evaluator"])
    executor = _build(registry, "executor", resolved["executor"])
    ctx = SearchContext(
        config=resolved, space=space, evaluator=evaluator, executor=executor, store=store, out=out,
        sampler=_build(registry, "sampler", resolved.get("sampler")),
        encoder=_build(registry, "encoder", resolved.get("encoder")),
        predictor=_build(registry, "predictor", resolved.get("predictor")),
        stopper=_build(registry, "stopper", resolved.get("stopper")),
        console=console,
    )
    optimizer = _build(registry, "optimizer", resolved["optimizer"])
    if ctx.encoder is not None:
        ctx.encoder.set_space(space)
    if store is not None:
        store.event("start", resume=resume, replayable=ctx.replayable)
    if resume:
        console.log(f"resuming {out}: {ctx.replayable} evaluations will be replayed from the store")
    try:
        if ctx.sampler is not None:
            ctx.sampler.setup(ctx)
        with ctx.searching():
            result = optimizer.run(ctx)
        if not isinstance(result, SearchResult):
            raise NascoreError(f"optimizer {resolved['optimizer']['name']!r} returned {type(result).__name__}, not a SearchResult")
        summary = _finish(ctx, result, resolved, t0)
    finally:
        executor.shutdown()
    if store is not None:
        store.event("finish", wall_seconds=summary["wall_seconds"])
    if out is not None:
        tmp = out / "result.json.tmp"  # atomic: a run killed while writing has no result.json
        tmp.write_text(json.dumps(summary, default=str))  # no indent: the C encoder, 10x faster
        os.replace(tmp, out / "result.json")
    if out is not None and report:
        try:
            from .report import write_report

            write_report(out)
        except Exception as exc:  # noqa: BLE001 - the results are safe; a plot must not lose them
            console.log(f"report failed: {type(exc).__name__}: {exc}")
    return summary


def _arch_summary(space, arch: Architecture, metrics: dict) -> dict:
    return {"key": arch.key, "genome": arch.genome, "tokens": space.tokens(arch), "metrics": metrics}


def _finish(ctx: SearchContext, result: SearchResult, resolved: dict, t0: float) -> dict:
    space = ctx.space
    best_arch = result.best
    if best_arch is None:
        ev = ctx.best()
        best_arch = ev.arch if ev is not None else None
    summary: dict[str, Any] = {"best": None, "stages": [], "info": result.info}
    if best_arch is not None:
        known = ctx.known(best_arch.key)
        metrics = dict(known.metrics) if known is not None else {}
        metrics.update(result.metrics)
        summary["best"] = _arch_summary(space, best_arch, metrics)
        if result.state_dict is not None:
            ctx.save_weights(best_arch.key, best_arch.genome, metrics, result.state_dict)
        summary["stages"] = _compress(ctx, best_arch, metrics, result.state_dict)
        if summary["stages"] and summary["stages"][-1].get("arch"):
            summary["final"] = summary["stages"][-1]
    if "baseline" in resolved:
        summary["baseline"] = _baseline(ctx, resolved["baseline"])
    summary["evaluations"] = [e.to_json() for e in ctx.history]
    summary["counts"] = {s: sum(e.status == s for e in ctx.history) for s in ("ok", "failed", "stopped")}
    summary["budget"] = {"budget": ctx.budget, "used": ctx.used}
    summary["figures"] = ctx.figures
    summary["wall_seconds"] = time.time() - t0
    summary["config"] = resolved
    summary["run_dir"] = str(ctx.out) if ctx.out is not None else None
    return summary


def _best_model(ctx: SearchContext, arch: Architecture, state_dict):
    """The trained network of ``arch``: stored weights if kept, else retrained (not counted)."""
    state_dict = state_dict if state_dict is not None else ctx.weights_for(arch.key)
    model = ctx.space.build(arch, ctx.task)
    if state_dict is None:
        job = ctx.job(arch, stop=False, local=True)
        outcome = ctx.evaluator.evaluate(arch, ctx.space, ctx.task, seed=job.seed)
        state_dict = outcome.state_dict
    if state_dict is not None:
        model.load_state_dict(state_dict)
    return model


def _compress(ctx: SearchContext, arch: Architecture, metrics: dict, state_dict) -> list[dict]:
    stages = []
    tables = ctx.config.get("compress", [])
    if not tables:
        return stages
    from .plugins import get_registry

    registry = get_registry()
    model = _best_model(ctx, arch, state_dict)
    for table in tables:
        compressor = _build(registry, "compressor", table)
        ctx.log(f"compressing with {table['name']}")
        t = time.time()
        res = compressor.compress(arch, model, ctx.task, ctx)
        stage = {"compressor": table["name"], **res.to_json(), "seconds": time.time() - t}
        if res.arch is not None:
            stage["tokens"] = ctx.space.tokens(res.arch) if res.arch.space == ctx.space.name else None
            arch = res.arch
        if res.model is not None:
            model = res.model
        stages.append(stage)
        if ctx.store is not None:
            ctx.store.event("compress", **stage)
    if model is not None:
        ctx.save_final_weights(model.state_dict())
    return stages


def _baseline(ctx: SearchContext, table: dict) -> dict:
    if "string" in table:
        arch = ctx.space.from_string(table["string"])
    else:
        arch = ctx.space.make(table["genome"])
    ev = ctx.known(arch.key)
    if ev is None:
        res = evaluate_job(ctx.job(arch, stop=False, local=True))
        res.pop("state_dict", None)
        metrics, status = res.get("metrics", {}), res["status"]
    else:
        metrics, status = ev.metrics, ev.status
    return {**_arch_summary(ctx.space, arch, metrics), "status": status}
