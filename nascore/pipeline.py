"""Config -> components -> run: the search context and the pipeline driver.

The driver is the single writer of the run store.  Evaluations run on the executor and
their results are committed the moment they come back.  Resume is replay: a run is
deterministic given its seed and its evaluation results, so ``resume=True`` re-runs the
search with finished evaluations served from the store and continues where it stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import traceback
from concurrent.futures import as_completed
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from . import config as cfg
from .arch import Architecture
from .errors import ConfigError, NascoreError, RunStoreError
from .results import FAILED, OK, Evaluation, SearchResult

_worker_cache: dict[str, Any] = {}


# --------------------------------------------------------------------------- worker side


def _cached(kind: str, table: dict, name_key: str = "name"):
    """Build (once per process) a component from its resolved config table."""
    from .plugins import get_registry

    key = kind + json.dumps(table, sort_keys=True, default=str)
    if key not in _worker_cache:
        params = dict(table)
        name = params.pop(name_key)
        _worker_cache[key] = get_registry().create(kind, name, **params)
    return _worker_cache[key]


def _load_task(table: dict):
    from .data import load_task

    return load_task(table)


def evaluation_seed(run_seed: int, key: str) -> int:
    """Per-candidate seed: independent of evaluation order and executor."""
    return (run_seed * 1_000_003 + int(key[:8], 16)) % (2**31 - 1)


def evaluate_job(job: dict) -> dict:
    """Evaluate one architecture; runs in the driver or in a worker process.

    ``job`` carries either live objects (local executor) or resolved config tables
    (process / Ray workers rebuild and cache them).  Never raises: failures come back
    as ``status = "failed"`` with the error text.
    """
    from .executors import worker_id

    started = time.time()
    out = {"worker": worker_id(), "started": started}
    try:
        space = job.get("space_obj") or _cached("search_space", job["space"])
        evaluator = job.get("evaluator_obj") or _cached("evaluator", job["evaluator"])
        task = job.get("task_obj")
        if task is None and job.get("task") is not None and getattr(evaluator, "needs_task", True):
            task = _load_task(job["task"])
        arch = Architecture(space.name, job["genome"])
        outcome = evaluator.evaluate(arch, space, task, seed=job["seed"], stopper=job.get("stopper"))
        metrics = dict(outcome.metrics)
        bad = [k for k in ("valid_accuracy",) if metrics.get(k) is not None and not np.isfinite(metrics[k])]
        status = outcome.status if not bad else FAILED
        out.update(status=status, metrics=metrics, curve=list(outcome.curve),
                   error=outcome.error if not bad else f"non-finite {bad[0]}",
                   state_dict=outcome.state_dict)
    except Exception as exc:  # noqa: BLE001 - a failing candidate never stops the search
        out.update(status=FAILED, metrics={}, curve=[], state_dict=None,
                   error=f"{type(exc).__name__}: {exc}",
                   traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:])
    out["finished"] = time.time()
    return out


# --------------------------------------------------------------------------- console


class Console:
    """Progress bars and log lines; silent with ``quiet``, JSON lines with ``json_logs``."""

    def __init__(self, quiet: bool = False, json_logs: bool = False):
        self.quiet = quiet
        self.json_logs = json_logs
        self._rich = None
        if not quiet and not json_logs:
            from rich.console import Console as RichConsole

            self._rich = RichConsole(stderr=True)

    def log(self, message: str, **data):
        if self.quiet:
            return
        if self.json_logs:
            print(json.dumps({"time": time.time(), "message": message, **data}, default=str), file=sys.stderr)
        else:
            self._rich.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}", highlight=False)

    @contextlib.contextmanager
    def progress(self, total: int | None, description: str):
        if self._rich is None or not sys.stderr.isatty() and os.environ.get("NASCORE_PROGRESS") != "1":
            yield lambda n=1: None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=self._rich, transient=True) as bar:
            tid = bar.add_task(description, total=total)
            yield lambda n=1: bar.advance(tid, n)


# --------------------------------------------------------------------------- context


class SearchContext:
    """Everything an optimizer or sampler may use; see docs/contracts.md."""

    def __init__(self, *, config: dict, space, evaluator, sampler=None, encoder=None, predictor=None,
                 stopper=None, executor=None, store=None, out: Path | None = None,
                 console: Console | None = None, task=None):
        self.config = config
        self.seed: int = config["seed"]
        self.budget: int = config["budget"]
        self.metric: str = config.get("metric", "valid_accuracy")
        self.device: str = config.get("device", "auto")
        self.space = space
        self.evaluator = evaluator
        self.sampler = sampler
        self.encoder = encoder
        self.predictor = predictor
        self.stopper = stopper
        self.executor = executor
        self.store = store
        self.out = out
        self.console = console or Console(quiet=True)
        self.rng = np.random.default_rng(self.seed)
        self.history: list[Evaluation] = []
        self._task = task
        self._known: dict[str, Evaluation] = {}
        self._replay: dict[str, Evaluation] = {}
        self._counted: set[str] = set()
        self._requests = 0
        self._best_weights: tuple[str, float] | None = None
        self.figures: list[dict] = []
        self._advance: Callable[..., None] = lambda n=1: None
        self.on_result: list[Callable[[Evaluation, Any], None]] = []
        if store is not None:
            self._replay = {e.key: e for e in store.evaluations()}

    # ---- data ------------------------------------------------------------------
    @property
    def task(self):
        if self._task is None:
            if "task" not in self.config:
                raise ConfigError("this run has no [task] table, but a component needs the dataset")
            self._task = _load_task(self.config["task"])
        return self._task

    def torch_generator(self, offset: int = 0):
        import torch

        return torch.Generator().manual_seed(self.seed + offset)

    def trainer(self, **overrides):
        """A Trainer configured like the run's ``train`` evaluator (if any), with overrides."""
        from .training import Trainer
        from .params import resolved_params

        base = {}
        ev = self.config.get("evaluator", {})
        if ev.get("name") == "train":
            fields = {f for f in resolved_params(Trainer())}
            base = {k: v for k, v in ev.items() if k in fields}
        base.setdefault("device", self.device)
        base.update(overrides)
        return Trainer(**base)

    # ---- budget ------------------------------------------------------------------
    @property
    def used(self) -> int:
        return len(self._counted)

    @property
    def remaining(self) -> int:
        if self._requests > 50 * max(self.budget, 1) + 1000:
            return 0  # an optimizer that only repeats known architectures must end
        return max(self.budget - self.used, 0)

    # ---- evaluation ----------------------------------------------------------------
    def evaluate(self, archs: Iterable[Architecture], *, stop: bool = True) -> list[Evaluation]:
        """Evaluate architectures in the order given; known ones come from the store.

        Fresh evaluations beyond the remaining budget are dropped, so the result can be
        shorter than the input (its prefix that fit).  ``stop=False`` trains them without
        the run's early-termination rule (an optimizer's final answer, say)."""
        archs = list(archs)
        results: list[Evaluation | None] = []
        pending: dict[str, Architecture] = {}
        for arch in archs:
            self._requests += 1
            key = arch.key
            if key in self._known:
                results.append(self._known[key])
                continue
            if key in pending:
                results.append(None)
                continue
            if self.remaining - len(pending) <= 0:
                break
            pending[key] = arch
            results.append(None)
        self._run_pending(pending, stop=stop)
        out = []
        for arch, res in zip(archs, results):
            out.append(res if res is not None else self._known[arch.key])
        return out

    def _run_pending(self, pending: dict[str, Architecture], stop: bool = True) -> None:
        if not pending:
            return
        if stop and self.stopper is not None and hasattr(self.stopper, "update"):
            self.stopper.update(self.history)
        done: dict[str, tuple[Evaluation, Any, bool]] = {}
        to_submit = []
        for key, arch in pending.items():
            if key in self._replay:
                done[key] = (self._replay.pop(key), None, False)
            else:
                to_submit.append(arch)
        futures = {self.executor.submit(evaluate_job, self._job(arch, stop)): arch for arch in to_submit}
        # commit each result the moment it arrives; accept them in the order asked, so the
        # history (and everything an optimizer derives from it) does not depend on timing
        for fut in as_completed(futures):
            arch = futures[fut]
            try:
                res = fut.result()
            except Exception as exc:  # noqa: BLE001 - the worker itself died
                res = {"status": FAILED, "metrics": {}, "curve": [], "error": f"worker error: {type(exc).__name__}: {exc}"}
            state_dict = res.pop("state_dict", None)
            tb = res.pop("traceback", None)
            ev = Evaluation(key=arch.key, space=arch.space, genome=arch.genome, status=res["status"],
                            metrics=res.get("metrics", {}), curve=res.get("curve", []), error=res.get("error"),
                            worker=res.get("worker"), started=res.get("started"), finished=res.get("finished"))
            if self.store is not None:
                ev.index = self.store.add(ev)
                if tb:
                    self.store.event("traceback", key=ev.key, traceback=tb)
            done[ev.key] = (ev, state_dict, True)
        for key in pending:
            self._accept(*done[key][:2], fresh=done[key][2])

    def _job(self, arch: Architecture, stop: bool = True) -> dict:
        job = {"genome": arch.genome, "seed": evaluation_seed(self.seed, arch.key),
               "stopper": self.stopper if stop else None}
        from .executors import LocalExecutor

        if isinstance(self.executor, LocalExecutor):
            job.update(space_obj=self.space, evaluator_obj=self.evaluator,
                       task_obj=self._task if not getattr(self.evaluator, "needs_task", True) else self.task)
        else:
            job.update(space=self.config["space"], evaluator=self.config["evaluator"], task=self.config.get("task"))
        return job

    def _accept(self, ev: Evaluation, state_dict, *, fresh: bool) -> None:
        self._known[ev.key] = ev
        self._counted.add(ev.key)
        self.history.append(ev)
        self._advance(1)
        value = ev.metric(self.metric)
        verb = "evaluated" if fresh else "replayed"
        self.console.log(
            f"[{self.used}/{self.budget}] {verb} {ev.key} {ev.status}"
            + (f" {self.metric}={value:.2f}" if isinstance(value, (int, float)) else "")
            + (f" ({ev.error})" if ev.error else ""),
            key=ev.key, status=ev.status, metric=value,
        )
        if state_dict is not None and ev.status == OK and value is not None:
            if self._best_weights is None or value > self._best_weights[1]:
                self._save_weights(ev, state_dict)
        for hook in self.on_result:
            hook(ev, state_dict)

    def _save_weights(self, ev: Evaluation, state_dict) -> None:
        self._best_weights = (ev.key, ev.metric(self.metric))
        if self.out is None:
            self._memory_weights = (ev.key, state_dict)
            return
        import torch

        tmp = self.out / "best.pt.tmp"
        torch.save(state_dict, tmp)
        os.replace(tmp, self.out / "best.pt")
        (self.out / "best.json").write_text(json.dumps({"key": ev.key, "genome": ev.genome, "metrics": ev.metrics}, indent=1))

    def weights_for(self, key: str):
        """The stored state_dict of evaluation ``key`` if it is the one kept, else None."""
        if self.out is not None and (self.out / "best.json").exists():
            meta = json.loads((self.out / "best.json").read_text())
            if meta.get("key") == key and (self.out / "best.pt").exists():
                import torch

                return torch.load(self.out / "best.pt", weights_only=True)
        mem = getattr(self, "_memory_weights", None)
        if mem is not None and mem[0] == key:
            return mem[1]
        return None

    def best(self, metric: str | None = None) -> Evaluation | None:
        metric = metric or self.metric
        ok = [e for e in self.history if e.status == OK and e.metric(metric) is not None]
        return max(ok, key=lambda e: e.metric(metric)) if ok else None

    # ---- reporting -----------------------------------------------------------------
    def log(self, message: str, **data) -> None:
        if self.store is not None:
            self.store.event("log", message=message, **data)
        self.console.log(message, **data)

    def progress(self, total: int | None, description: str):
        return self.console.progress(total, description)

    def add_figure(self, path, title: str) -> None:
        entry = {"path": str(path), "title": title}
        self.figures.append(entry)
        if self.store is not None:
            self.store.event("figure", **entry)


# --------------------------------------------------------------------------- driver


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
                 json_logs: bool = False, write_files: bool = True) -> dict:
    """Run a pipeline; returns the result dict (the content of ``result.json``)."""
    from .plugins import get_registry
    from .store import RunStore

    resolved, out = prepare(config, out=out, resume=resume, sets=sets)
    if out is None and write_files:
        out = default_out_dir(resolved["name"])
    console = Console(quiet=quiet, json_logs=json_logs)
    store = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        if not resume and (out / "run.sqlite").exists():
            raise RunStoreError(f"{out} already holds a run; resume it with --resume or choose another --out")
        store = RunStore(out)
        if resume:
            stored = store.get_meta("config")
            if stored is not None and stored != json.loads(json.dumps(resolved)):
                store.close()
                raise RunStoreError(f"{out}/config.toml differs from the configuration stored in run.sqlite")
        else:
            store.set_meta("config", resolved)
            (out / "config.toml").write_text(cfg.dumps(resolved))
    try:
        return _execute(get_registry(), resolved, out, store, console, resume)
    finally:
        if store is not None:
            store.close()


def _execute(registry, resolved: dict, out: Path | None, store, console: Console, resume: bool) -> dict:
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
    if ctx.encoder is not None and hasattr(ctx.encoder, "set_space"):
        ctx.encoder.set_space(space)
    if store is not None:
        store.event("start", resume=resume, replayable=len(ctx._replay))
    if resume:
        console.log(f"resuming {out}: {len(ctx._replay)} evaluations will be replayed from the store")
    try:
        if ctx.sampler is not None and hasattr(ctx.sampler, "setup"):
            ctx.sampler.setup(ctx)
        with ctx.progress(ctx.budget, "search") as advance:
            ctx._advance = advance
            result = optimizer.run(ctx)
        ctx._advance = lambda n=1: None
        if not isinstance(result, SearchResult):
            raise NascoreError(f"optimizer {resolved['optimizer']['name']!r} returned {type(result).__name__}, not a SearchResult")
        summary = _finish(ctx, result, resolved, t0)
    finally:
        executor.shutdown()
    if store is not None:
        store.event("finish", wall_seconds=summary["wall_seconds"])
    if out is not None:
        (out / "result.json").write_text(json.dumps(summary, indent=1, default=str))
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
        known = ctx._known.get(best_arch.key)
        metrics = dict(known.metrics) if known is not None else {}
        metrics.update(result.metrics)
        summary["best"] = _arch_summary(space, best_arch, metrics)
        if result.state_dict is not None and ctx.out is not None:
            import torch

            torch.save(result.state_dict, ctx.out / "best.pt")
            (ctx.out / "best.json").write_text(json.dumps({"key": best_arch.key, "genome": best_arch.genome, "metrics": metrics}, indent=1))
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
        outcome = ctx.evaluator.evaluate(arch, ctx.space, ctx.task, seed=evaluation_seed(ctx.seed, arch.key))
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
    if ctx.out is not None and model is not None:
        import torch

        torch.save(model.state_dict(), ctx.out / "final.pt")
    return stages


def _baseline(ctx: SearchContext, table: dict) -> dict:
    if "string" in table:
        arch = ctx.space.from_string(table["string"])
    else:
        arch = ctx.space.make(table["genome"])
    ev = ctx._known.get(arch.key)
    if ev is None:
        res = evaluate_job({"genome": arch.genome, "seed": evaluation_seed(ctx.seed, arch.key),
                            "space_obj": ctx.space, "evaluator_obj": ctx.evaluator,
                            "task_obj": ctx.task if getattr(ctx.evaluator, "needs_task", True) else None})
        res.pop("state_dict", None)
        metrics, status = res.get("metrics", {}), res["status"]
    else:
        metrics, status = ev.metrics, ev.status
    return {**_arch_summary(ctx.space, arch, metrics), "status": status}
