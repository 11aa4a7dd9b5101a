"""The search context: what an optimizer, a sampler or a compressor may use during a run.

See docs/contracts.md.  The context evaluates architectures through the executor, serves
known ones (and, on resume, the stored ones) without recomputing them, commits each result
to the run store, and keeps the best network's weights (:class:`BestWeights`).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from .arch import Architecture
from .console import Console
from .errors import ConfigError, ContextReadOnlyError
from .job import EvaluationJob, evaluate_job, evaluation_seed
from .results import FAILED, OK, Evaluation


class BestWeights:
    """The state_dict of the best evaluation so far: ``best.pt`` + ``best.json`` in the run
    directory, or kept in memory for a run without one."""

    def __init__(self, out: Path | None):
        self.out = out
        self.best: tuple[str, float] | None = None
        self._memory: tuple[str, Any] | None = None

    def offer(self, ev: Evaluation, state_dict, value: float) -> None:
        """Keep ``state_dict`` if ``value`` beats the one kept."""
        if self.best is None or value > self.best[1]:
            self.best = (ev.key, value)
            if self.out is None:
                self._memory = (ev.key, state_dict)
            else:
                self.write(ev.key, ev.genome, ev.metrics, state_dict)

    def write(self, key: str, genome: dict, metrics: dict, state_dict) -> None:
        """Write ``best.pt`` (atomically) and ``best.json``."""
        import torch

        tmp = self.out / "best.pt.tmp"
        torch.save(state_dict, tmp)
        os.replace(tmp, self.out / "best.pt")
        (self.out / "best.json").write_text(json.dumps({"key": key, "genome": genome, "metrics": metrics}, indent=1))

    def write_final(self, state_dict) -> None:
        """The network after the compression stages: ``final.pt``."""
        import torch

        torch.save(state_dict, self.out / "final.pt")

    def load(self, key: str):
        """The stored state_dict of evaluation ``key`` if it is the one kept, else None."""
        if self.out is not None and (self.out / "best.json").exists():
            meta = json.loads((self.out / "best.json").read_text())
            if meta.get("key") == key and (self.out / "best.pt").exists():
                import torch

                return torch.load(self.out / "best.pt", weights_only=True)
        if self._memory is not None and self._memory[0] == key:
            return self._memory[1]
        return None


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
        self._weights = BestWeights(out)
        self._finished = 0  # evaluations finished or replayed so far (the log's count)
        self._streak: tuple[str | None, int] = (None, 0)
        self.figures: list[dict] = []
        self._advance: Callable[..., None] = lambda n=1: None
        self.on_result: list[Callable[[Evaluation, Any], None]] = []
        if store is not None:
            self._replay = {e.key: e for e in store.evaluations()}
        self._states: dict[str, dict] = {}
        self._sealed = True  # from here on the context is read-only (see __setattr__)

    # ---- read-only surface ---------------------------------------------------------
    def __setattr__(self, name: str, value) -> None:
        # after __init__ only the context's own existing private fields change; a plugin
        # keeps its objects in its state area instead of hanging them on the context
        if not self.__dict__.get("_sealed") or (name.startswith("_") and name in self.__dict__):
            object.__setattr__(self, name, value)
            return
        raise ContextReadOnlyError(
            f"the search context is read-only: cannot set {name!r}; keep a plugin's own objects "
            "(a fallback predictor, a sampler it made, caches) in ctx.state(\"<plugin>\") (docs/contracts.md)")

    def __delattr__(self, name: str) -> None:
        raise ContextReadOnlyError(f"the search context is read-only: cannot delete {name!r}")

    def state(self, owner: str) -> dict:
        """The state area of plugin ``owner``: a dict that lives as long as the run's context,
        created empty on first use.  Only its owner writes it (name it after the plugin)."""
        if not isinstance(owner, str) or not owner:
            raise ConfigError(f"ctx.state needs the owning plugin's name, got {owner!r}")
        return self._states.setdefault(owner, {})

    # ---- data ------------------------------------------------------------------
    @property
    def task(self):
        if self._task is None:
            if "task" not in self.config:
                raise ConfigError("this run has no [task] table, but a component needs the dataset")
            from .data import load_task

            self._task = load_task(self.config["task"])
        return self._task

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

    def known(self, key: str) -> Evaluation | None:
        """The evaluation of architecture ``key`` in this run, if it has one."""
        return self._known.get(key)

    @property
    def replayable(self) -> int:
        """How many stored evaluations (of a resumed run) have not been replayed yet."""
        return len(self._replay)

    def _run_pending(self, pending: dict[str, Architecture], stop: bool = True) -> None:
        if not pending:
            return
        if stop and self.stopper is not None:
            self.stopper.update(self.history)
        done: dict[str, tuple[Evaluation, Any, bool]] = {}
        to_submit = []
        for key, arch in pending.items():
            if key in self._replay:
                done[key] = (self._replay.pop(key), None, False)
            else:
                to_submit.append(arch)
        # the executor hands over each result the moment it finishes: it is committed,
        # logged and counted on the progress bar then; the results are *accepted* in the
        # order asked, so the history (and everything an optimizer derives from it) does
        # not depend on timing
        jobs = [self.job(arch, stop=stop) for arch in to_submit]
        # a cheap evaluator's store commits this batch once, when it ends (RunStore.batch);
        # any other store still commits each row as it arrives
        with self.store.batch() if self.store is not None else contextlib.nullcontext():
            self._collect(jobs, to_submit, done)
        for key in pending:
            self._accept(*done[key][:2], fresh=done[key][2])

    def _collect(self, jobs: list, to_submit: list, done: dict) -> None:
        for i, res, exc in self.executor.each(evaluate_job, jobs):
            arch = to_submit[i]
            if exc is not None:  # the worker itself died (every retry) or could not run the job
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
            else:
                ev.index = self._finished
            self._finished += 1
            self._advance(1)
            self._log_evaluation(ev, "evaluated")
            done[ev.key] = (ev, state_dict, True)
            self._check_failure_streak(ev)

    #: a run stops (exit 2, what finished is kept) when this many consecutive fresh
    #: evaluations fail with the same error: a systematic failure, not a bad candidate
    FAILURE_STREAK = 5

    def _check_failure_streak(self, ev: Evaluation) -> None:
        from .errors import SystematicFailureError

        if ev.status != FAILED:
            self._streak = (None, 0)
            return
        error = ev.error or ""
        count = self._streak[1] + 1 if self._streak[0] == error else 1
        self._streak = (error, count)
        if count >= self.FAILURE_STREAK:
            where = f"; the {self._finished} finished evaluations are kept in {self.out}" if self.out else ""
            raise SystematicFailureError(
                f"stopped: {count} evaluations in a row failed with the same error: {error}{where}")

    def evaluation_number(self, ev: Evaluation) -> int:
        """The number shown for ``ev`` in the log, ``nascore show`` and the report:
        1-based completion order (the store's index + 1)."""
        return (ev.index if ev.index is not None else 0) + 1

    def _log_evaluation(self, ev: Evaluation, verb: str) -> None:
        value = ev.metric(self.metric)
        self.console.log(
            f"#{self.evaluation_number(ev)} [{self._finished}/{self.budget}] {verb} {ev.key} {ev.status}"
            + (f" {self.metric}={value:.2f}" if isinstance(value, (int, float)) else "")
            + (f" ({ev.error})" if ev.error else ""),
            key=ev.key, status=ev.status, metric=value, number=self.evaluation_number(ev),
        )

    def job(self, arch: Architecture, *, stop: bool = True, local: bool | None = None) -> EvaluationJob:
        """The worker job that evaluates ``arch`` like this run does (its seed, evaluator,
        task and, with ``stop``, the run's early-termination rule).  ``local`` jobs carry
        the live components; others their config tables (default: by the executor)."""
        from .executors import LocalExecutor

        if local is None:
            local = isinstance(self.executor, LocalExecutor)
        seed = evaluation_seed(self.seed, arch.key)
        stopper = self.stopper if stop else None
        if local:
            task = self.task if self.evaluator.needs_task else self._task
            return EvaluationJob(arch.genome, seed, self.space, self.evaluator, task, stopper)
        return EvaluationJob(arch.genome, seed, self.config["space"], self.config["evaluator"],
                             self.config.get("task"), stopper)

    def _accept(self, ev: Evaluation, state_dict, *, fresh: bool) -> None:
        self._known[ev.key] = ev
        self._counted.add(ev.key)
        self.history.append(ev)
        value = ev.metric(self.metric)
        if not fresh:  # fresh ones were counted and logged when they finished
            self._finished += 1
            self._advance(1)
            self._log_evaluation(ev, "replayed")
        if state_dict is not None and ev.status == OK and value is not None:
            self._weights.offer(ev, state_dict, value)
        for hook in self.on_result:
            hook(ev, state_dict)

    def weights_for(self, key: str):
        """The stored state_dict of evaluation ``key`` if it is the one kept, else None."""
        return self._weights.load(key)

    def save_weights(self, key: str, genome: dict, metrics: dict, state_dict) -> None:
        """Write the answer's weights (``best.pt``/``best.json``) into the run directory."""
        if self.out is not None:
            self._weights.write(key, genome, metrics, state_dict)

    def save_final_weights(self, state_dict) -> None:
        """Write the network after the compression stages (``final.pt``)."""
        if self.out is not None:
            self._weights.write_final(state_dict)

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

    @contextlib.contextmanager
    def searching(self, description: str = "search"):
        """Show the search's progress bar, advanced by one per accepted evaluation."""
        with self.progress(self.budget, description) as advance:
            self._advance = advance
            try:
                yield
            finally:
                self._advance = lambda n=1: None

    def add_figure(self, path, title: str) -> None:
        entry = {"path": str(path), "title": title}
        self.figures.append(entry)
        if self.store is not None:
            self.store.event("figure", **entry)
