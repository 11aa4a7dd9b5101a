"""Executors: where candidate evaluations run.

Every executor has ``max_workers``, ``submit(fn, *args) -> concurrent.futures.Future``
and ``shutdown()``, and is a context manager.  Results flow back to the driver, the
single writer of the run store.  ``fn`` and its arguments must be picklable (importable
functions, JSON-like data): the ``process`` and ``ray`` executors run them elsewhere.

* ``local`` runs each job in the calling process when it is submitted.
* ``process`` is a pool of ``spawn``-ed worker processes (no forked torch state), each
  limited to ``cpu_count // workers`` torch threads so that workers do not oversubscribe
  the cores.
* ``ray`` runs each job as a Ray task with ``num_cpus``/``num_gpus`` per candidate, on a
  local Ray instance started on demand or on an existing cluster (``address``).

:func:`worker_id` names the process a job ran in; evaluation jobs put it in their result.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import socket
import sys
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


def _init_worker(threads: int) -> None:
    limit_threads(threads, load_torch=True)


def _completed(fn, args) -> cf.Future:
    future: cf.Future = cf.Future()
    try:
        future.set_result(fn(*args))
    except Exception as exc:  # noqa: BLE001 - the future carries it to the caller
        future.set_exception(exc)
    return future


class _ExecutorBase:
    """Context-manager protocol and ``map`` shared by the executors."""

    max_workers: int

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

    def shutdown(self) -> None:
        """Nothing to release."""


@attrs.define
class ProcessExecutor(_ExecutorBase):
    """A pool of ``workers`` spawned processes (``concurrent.futures.ProcessPoolExecutor``)."""

    workers: int = param(2, help="number of worker processes", validator=in_range(1))
    threads: int | None = param(
        None, help="torch threads per worker; default: CPUs // workers (at least 1)", validator=in_range(1))
    _pool: cf.ProcessPoolExecutor | None = attrs.field(default=None, init=False, repr=False)

    @property
    def max_workers(self) -> int:
        return self.workers

    @property
    def threads_per_worker(self) -> int:
        return self.threads or max(1, cpu_count() // self.workers)

    def _get_pool(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker, initargs=(self.threads_per_worker,),
            )
        return self._pool

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


def _ray_job(fn, threads, *args):
    """Body of every Ray task: limit torch threads to the task's CPUs, then run ``fn``."""
    limit_threads(threads)
    return fn(*args)


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
        None, help="candidates in flight at once; default: cluster CPUs // num_cpus", validator=in_range(1))
    num_cpus: float = param(1.0, help="CPUs reserved per candidate", validator=in_range(0))
    num_gpus: float = param(0.0, help="GPUs reserved per candidate (fractions share a GPU)", validator=in_range(0))
    runtime_env: dict | None = param(None, help="Ray runtime_env (pip, env_vars, working_dir, ...)")
    _started: bool = attrs.field(default=False, init=False, repr=False)
    _remote: object = attrs.field(default=None, init=False, repr=False)

    def _ray(self):
        ray = _import_ray()
        if not ray.is_initialized():
            kwargs = {"address": self.address, "runtime_env": self.runtime_env}
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
        cpus = self._ray().cluster_resources().get("CPU", 1)
        return max(1, int(cpus // self.num_cpus)) if self.num_cpus > 0 else max(1, int(cpus))

    def submit(self, fn, *args) -> cf.Future:
        self._ray()
        threads = max(1, int(self.num_cpus))
        ref = self._remote.options(num_cpus=self.num_cpus, num_gpus=self.num_gpus).remote(fn, threads, *args)
        return ref.future()

    def shutdown(self) -> None:
        """Stop Ray if this executor started it; a shared instance is left running."""
        self._remote = None
        if self._started:
            _import_ray().shutdown()
            self._started = False
