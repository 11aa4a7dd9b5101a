"""Executors: where candidate evaluations run.

Every executor has ``max_workers``, ``submit(fn, *args) -> concurrent.futures.Future``
and ``shutdown()``, and is a context manager.  Results flow back to the driver, the
single writer of the run store.  ``fn`` and its arguments must be picklable (importable
functions, JSON-like data): the ``process`` and ``ray`` executors run them elsewhere.

* ``local`` runs each job in the calling process when it is submitted (or, through
  :meth:`~_ExecutorBase.each`, one job at a time as the results are consumed).
* ``process`` is a pool of ``spawn``-ed worker processes (no forked torch state), each
  limited to ``cpu_count // workers`` torch threads so that workers do not oversubscribe
  the cores.
* ``ray`` runs each job as a Ray task with ``num_cpus``/``num_gpus`` per candidate, on a
  local Ray instance started on demand or on an existing cluster (``address``).

:func:`worker_id` names the process a job ran in; evaluation jobs put it in their result.

The driver runs a batch through :meth:`_ExecutorBase.each`, which yields every job's
result the moment it finishes (so the store, log lines and progress bar follow each
evaluation) and retries a job whose *worker died* (crash, OOM kill, lost node) up to
``retries`` times on a fresh worker; a job that raises is never retried.  Workers of the
``process`` executor and Ray workers started on this machine exit within about a second
when the driver dies by any signal (:func:`die_with_parent`).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from concurrent.futures.process import BrokenProcessPool

import attrs

from .errors import ConfigError
from .params import in_range, param

_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def worker_id() -> str:
    """``hostname:pid`` of the calling process (the worker that ran a job)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def cpu_count() -> int:
    """CPUs this process may use (affinity-aware), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def limit_threads(threads: int, *, load_torch: bool = False) -> None:
    """Use ``threads`` intra-op threads in this process: set the OpenMP/BLAS variables
    for libraries not loaded yet and torch's own setting (torch caps the variables at
    the core count, ``set_num_threads`` does not).  ``load_torch`` imports torch first
    (worker initializers: every evaluation job needs it anyway)."""
    threads = max(1, int(threads))
    for name in _THREAD_ENV:
        os.environ[name] = str(threads)
    torch = sys.modules.get("torch")
    if torch is None and load_torch:
        try:
            import torch
        except ImportError:
            torch = None
    if torch is not None:
        torch.set_num_threads(threads)


_PR_SET_PDEATHSIG = 1


def _set_parent_death_signal(sig: int) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies (``prctl``)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int, interval: float) -> None:
    while True:
        time.sleep(interval)
        if os.getppid() != parent_pid:
            os._exit(1)


def die_with_parent(parent_pid: int, *, signal_on_death: bool = True, interval: float = 0.5) -> None:
    """Make this worker exit when process ``parent_pid`` (the driver) is gone.

    Two mechanisms, because either alone has a gap: Linux's parent-death signal (SIGKILL,
    immediate, but tied to the parent *thread* that started this process, hence
    ``signal_on_death`` only when that was the driver's main thread) and a daemon thread
    that polls the parent pid every ``interval`` seconds (any POSIX system).  A worker
    whose parent is already gone exits at once."""
    if signal_on_death:
        _set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid, interval), daemon=True,
                     name="nascore-parent-watch").start()


def _init_worker(threads: int, parent_pid: int | None = None, signal_on_death: bool = False) -> None:
    if parent_pid is not None:
        die_with_parent(parent_pid, signal_on_death=signal_on_death)
    limit_threads(threads, load_torch=True)


class WorkerDiedError(RuntimeError):
    """A job's worker died (crash, OOM kill, lost node) before the job returned."""


def _completed(fn, args) -> cf.Future:
    future: cf.Future = cf.Future()
    try:
        future.set_result(fn(*args))
    except Exception as exc:  # noqa: BLE001 - the future carries it to the caller
        future.set_exception(exc)
    return future


class _ExecutorBase:
    """Context-manager protocol, ``map`` and ``each`` shared by the executors."""

    max_workers: int
    retries: int = 0

    def _worker_died(self, exc: BaseException) -> bool:
        """Whether ``exc`` from a future means the worker died (retry) rather than the
        job raised (never retried)."""
        return False

    def _after_death(self) -> None:
        """Replace whatever a dead worker broke (the process pool) before resubmitting."""

    def each(self, fn, jobs):
        """Run ``fn(job)`` for every job; yield ``(index, result, error)`` the moment each
        finishes, in completion order (``error`` is the exception a job raised, else None).

        When a worker dies, every job that was in flight with it is a suspect (a process
        pool cannot tell which job killed it): each is rerun, up to ``retries`` times, *alone*
        on a fresh worker, so that a job that kills its worker again is identified and
        yields :class:`WorkerDiedError` while the rest of the batch completes normally."""
        jobs = list(jobs)
        attempts = [0] * len(jobs)
        futures = {self.submit(fn, job): i for i, job in enumerate(jobs)}
        suspects: list[tuple[int, BaseException]] = []
        broken = False
        while futures or suspects:
            if not futures:  # the batch is drained: rerun suspects one at a time
                if broken:
                    self._after_death()
                    broken = False
                i, exc = suspects.pop(0)
                if attempts[i] >= self.retries:
                    tries = attempts[i] + 1
                    yield i, None, WorkerDiedError(
                        f"worker died {tries} time{'s' if tries > 1 else ''} running this job "
                        f"({type(exc).__name__}: {exc}); retries={self.retries}")
                    continue
                attempts[i] += 1
                futures[self.submit(fn, jobs[i])] = i
            done, _ = cf.wait(futures, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                i = futures.pop(fut)
                try:
                    result = fut.result()
                except Exception as exc:  # noqa: BLE001 - the caller records it
                    if self._worker_died(exc):
                        suspects.append((i, exc))
                        broken = True
                        continue
                    yield i, None, exc
                    continue
                yield i, result, None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()

    def map(self, fn, *iterables) -> list:
        """Run ``fn`` over the zipped iterables; results in input order."""
        futures = [self.submit(fn, *args) for args in zip(*iterables)]
        return [f.result() for f in futures]


@attrs.define
class LocalExecutor(_ExecutorBase):
    """Runs every job in this process, at submission (a completed Future comes back)."""

    @property
    def max_workers(self) -> int:
        return 1

    def submit(self, fn, *args) -> cf.Future:
        return _completed(fn, args)

    def each(self, fn, jobs):
        """One job at a time, each yielded as soon as it returns (nothing to retry: a dead
        worker here is a dead driver)."""
        for i, job in enumerate(jobs):
            try:
                result = fn(job)
            except Exception as exc:  # noqa: BLE001 - the caller records it
                yield i, None, exc
                continue
            yield i, result, None

    def shutdown(self) -> None:
        """Nothing to release."""


@attrs.define
class ProcessExecutor(_ExecutorBase):
    """A pool of ``workers`` spawned processes (``concurrent.futures.ProcessPoolExecutor``)."""

    workers: int = param(2, help="number of worker processes", validator=in_range(1))
    threads: int | None = param(
        None, help="torch threads per worker; default: CPUs // workers (at least 1)", validator=in_range(1))
    retries: int = param(1, help="times a candidate whose worker died is rerun on a fresh worker",
                         validator=in_range(0))
    _pool: cf.ProcessPoolExecutor | None = attrs.field(default=None, init=False, repr=False)

    @property
    def max_workers(self) -> int:
        return self.workers

    @property
    def threads_per_worker(self) -> int:
        return self.threads or max(1, cpu_count() // self.workers)

    def _get_pool(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            # workers are started by the thread that submits; the parent-death signal is
            # tied to that thread, so it is only safe when that is the main thread
            main = threading.current_thread() is threading.main_thread()
            self._pool = cf.ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker, initargs=(self.threads_per_worker, os.getpid(), main),
            )
        return self._pool

    def _worker_died(self, exc: BaseException) -> bool:
        return isinstance(exc, BrokenProcessPool)

    def _after_death(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def submit(self, fn, *args) -> cf.Future:
        """Queue a job; a pool broken by a worker that died (crash, OOM kill) is replaced,
        so only the jobs that were in flight fail (with ``BrokenProcessPool``)."""
        try:
            return self._get_pool().submit(fn, *args)
        except BrokenProcessPool:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            return self._get_pool().submit(fn, *args)

    def shutdown(self) -> None:
        """Cancel queued jobs, wait for running ones, then stop the worker processes."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("the 'ray' executor needs Ray: pip install 'nascore[ray]'") from None
    return ray


def _ray_job(fn, threads, driver, *args):
    """Body of every Ray task: limit torch threads to the task's CPUs, then run ``fn``.

    ``driver`` is ``(hostname, pid)`` of the driver when it started Ray on this machine:
    the worker then exits when that process is gone (Ray's own cleanup of a dead
    driver's workers can take much longer)."""
    if driver is not None and driver[0] == socket.gethostname():
        _watch_driver(driver[1])
    limit_threads(threads)
    return fn(*args)


_WATCHED: set[int] = set()


def _watch_driver(pid: int, interval: float = 0.5) -> None:
    if pid in _WATCHED:
        return
    _WATCHED.add(pid)

    def watch():
        while True:
            time.sleep(interval)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass

    threading.Thread(target=watch, daemon=True, name="nascore-driver-watch").start()


@attrs.define
class RayExecutor(_ExecutorBase):
    """Ray tasks with per-candidate resources, on a local instance or a cluster.

    ``address=None`` starts Ray on this machine (``ray.init()``, with ``workers x
    num_cpus`` CPUs when ``workers`` is set) unless Ray is already initialized in this
    process; ``"auto"`` or ``"ray://host:port"`` joins an existing cluster.  ``shutdown``
    stops Ray only if this executor started it.
    """

    address: str | None = param(None, help='None: start Ray locally; "auto" or "ray://host:port": a cluster')
    workers: int | None = param(
        None, help="candidates in flight at once; default: cluster CPUs // num_cpus (and GPUs / num_gpus)",
        validator=in_range(1))
    num_cpus: float = param(1.0, help="CPUs reserved per candidate", validator=in_range(0))
    num_gpus: float = param(0.0, help="GPUs reserved per candidate (fractions share a GPU)", validator=in_range(0))
    runtime_env: dict | None = param(None, help="Ray runtime_env (pip, env_vars, working_dir, ...)")
    retries: int = param(1, help="times a candidate whose worker or node died is rerun (Ray's task retries)",
                         validator=in_range(0))
    _started: bool = attrs.field(default=False, init=False, repr=False)
    _remote: object = attrs.field(default=None, init=False, repr=False)

    def _ray(self):
        ray = _import_ray()
        if not ray.is_initialized():
            # "local": a new instance on this machine, never a cluster some other process
            # left running (which ray.init() without an address would join)
            kwargs = {"address": self.address or "local", "runtime_env": self.runtime_env}
            if self.address is None:
                kwargs["include_dashboard"] = False
                if self.workers is not None:
                    kwargs["num_cpus"] = max(1, int(round(self.workers * max(self.num_cpus, 1))))
            try:
                ray.init(**kwargs)
            except ConnectionError as exc:
                raise ConfigError(f"cannot reach the Ray cluster at {self.address!r}: {exc}") from None
            self._started = True
        if self._remote is None:
            self._remote = ray.remote(_ray_job)
        return ray

    @property
    def max_workers(self) -> int:
        if self.workers is not None:
            return self.workers
        resources = self._ray().cluster_resources()
        cpus = resources.get("CPU", 1)
        n = int(cpus // self.num_cpus) if self.num_cpus > 0 else int(cpus)
        if self.num_gpus > 0:  # fractions share a GPU: 1 GPU / 0.25 per candidate = 4 in flight
            n = min(n, int(resources.get("GPU", 0) / self.num_gpus + 1e-9))
        return max(1, n)

    def submit(self, fn, *args) -> cf.Future:
        self._ray()
        threads = max(1, int(self.num_cpus))
        driver = (socket.gethostname(), os.getpid()) if self._started and self.address is None else None
        ref = self._remote.options(num_cpus=self.num_cpus, num_gpus=self.num_gpus,
                                   max_retries=self.retries).remote(fn, threads, driver, *args)
        return ref.future()

    def _worker_died(self, exc: BaseException) -> bool:
        # Ray already retried the task ``retries`` times on system failures; a failure
        # that still surfaces as a dead worker or node is final (``each`` would double it)
        return False

    def shutdown(self) -> None:
        """Stop Ray if this executor started it; a shared instance is left running."""
        self._remote = None
        if self._started:
            _import_ray().shutdown()
            self._started = False
