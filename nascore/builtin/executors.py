"""Built-in executors (a default plugin): ``local``, ``process`` and ``ray``."""

from __future__ import annotations

from ..executors import LocalExecutor, ProcessExecutor, RayExecutor
from ..hookspecs import hookimpl


@hookimpl
def register_executors(register):
    register("local", LocalExecutor, description="run each candidate in this process")
    register("process", ProcessExecutor, description="pool of spawned worker processes on this machine")
    register("ray", RayExecutor, description="Ray tasks with per-candidate CPUs/GPUs, locally or on a cluster (nascore[ray])")
