"""Executors run real functions: in process, in a spawned pool, on a local Ray instance."""

from __future__ import annotations

import concurrent.futures as cf
import os
import socket
import sys

import pytest

import nascore
from nascore.errors import ConfigError
from nascore.executors import LocalExecutor, ProcessExecutor, RayExecutor, worker_id


def square_job(x: int) -> dict:
    """A job that reports where it ran and how many torch threads it had."""
    import torch

    return {"value": x * x, "pid": os.getpid(), "worker": worker_id(), "threads": torch.get_num_threads()}


def failing_job(x: int):
    raise ValueError(f"bad candidate {x}")


def test_worker_id_names_host_and_pid():
    assert worker_id() == f"{socket.gethostname()}:{os.getpid()}"


def test_registered_executors_build_with_validated_params():
    assert isinstance(nascore.create("executor", "local"), LocalExecutor)
    proc = nascore.create("executor", "process", workers=3)
    assert isinstance(proc, ProcessExecutor) and proc.max_workers == 3
    assert isinstance(nascore.create("executor", "ray", num_cpus=2, num_gpus=0.5), RayExecutor)
    with pytest.raises(ConfigError, match="workers"):
        nascore.create("executor", "process", workers=0)


def test_local_runs_in_this_process_and_returns_completed_futures():
    with LocalExecutor() as ex:
        assert ex.max_workers == 1
        futures = [ex.submit(square_job, i) for i in range(3)]
        assert all(f.done() for f in futures)
        results = [f.result() for f in futures]
        assert [r["value"] for r in results] == [0, 1, 4]
        assert {r["pid"] for r in results} == {os.getpid()}
        bad = ex.submit(failing_job, 5)
        with pytest.raises(ValueError, match="bad candidate 5"):
            bad.result()


def test_process_pool_runs_jobs_in_other_processes_with_limited_threads():
    with ProcessExecutor(workers=2) as ex:
        futures = [ex.submit(square_job, i) for i in range(6)]
        bad = ex.submit(failing_job, 1)
        results = [f.result(timeout=120) for f in futures]
        with pytest.raises(ValueError, match="bad candidate 1"):
            bad.result(timeout=60)
    assert [r["value"] for r in results] == [i * i for i in range(6)]
    pids = {r["pid"] for r in results}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert {r["worker"] for r in results} == {f"{socket.gethostname()}:{p}" for p in pids}
    assert {r["threads"] for r in results} == {ex.threads_per_worker}


def dying_job(code: int):
    os._exit(code)


def test_process_pool_recovers_from_a_dead_worker_and_honours_threads():
    from concurrent.futures.process import BrokenProcessPool

    with ProcessExecutor(workers=1, threads=3) as ex:
        with pytest.raises(BrokenProcessPool):
            ex.submit(dying_job, 7).result(timeout=120)
        result = ex.submit(square_job, 3).result(timeout=120)  # on a fresh pool
    assert (result["value"], result["threads"]) == (9, 3)


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'nascore[ray]')")
    # Ray workers cannot import this test module by name: ship its jobs by value
    module = sys.modules[__name__]
    ray.cloudpickle.register_pickle_by_value(module)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
    ray.cloudpickle.unregister_pickle_by_value(module)


@pytest.mark.timeout(300)
def test_ray_runs_jobs_in_ray_worker_processes(local_ray):
    ex = RayExecutor(num_cpus=1)
    assert ex.max_workers == 2  # 2 cluster CPUs / 1 CPU per candidate
    futures = [ex.submit(square_job, i) for i in range(4)]
    assert all(isinstance(f, cf.Future) for f in futures)
    results = [f.result(timeout=120) for f in futures]
    assert [r["value"] for r in results] == [0, 1, 4, 9]
    pids = {r["pid"] for r in results}
    assert os.getpid() not in pids
    assert {r["threads"] for r in results} == {1}
    with pytest.raises(ValueError, match="bad candidate 2"):
        ex.submit(failing_job, 2).result(timeout=120)
    ex.shutdown()
    assert local_ray.is_initialized()  # not started by the executor: left running


def test_ray_missing_gives_an_install_hint(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kw):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ConfigError, match=r"nascore\[ray\]"):
        RayExecutor().submit(square_job, 1)
