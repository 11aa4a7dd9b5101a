"""GPU sharing under Ray, on a CPU machine: Ray is started with one declared GPU (a
logical resource; no device is touched), so the scheduling is Ray's real one.  Two
candidates asking 0.5 GPU each run at the same time on that GPU; two asking 1 GPU each
run one after the other."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from nascore.executors import RayExecutor


def hold_gpu(barrier, name, wait):
    """A candidate: it announces itself in the folder ``barrier`` and waits up to ``wait``
    seconds for the other candidate to do the same (a rendezvous, so a slow worker start
    on a loaded machine cannot fake or hide concurrency); returns whether it met the
    other one and what Ray assigned to it."""
    import ray

    Path(barrier, name).touch()
    deadline = time.time() + wait
    met = False
    while time.time() < deadline and not met:
        met = len(list(Path(barrier).iterdir())) >= 2
        time.sleep(0.05)
    ctx = ray.get_runtime_context()
    return {"met": met, "gpu": ctx.get_assigned_resources().get("GPU"),
            "gpu_ids": [str(i) for i in ray.get_gpu_ids()], "visible": os.environ.get("CUDA_VISIBLE_DEVICES")}


@pytest.fixture(scope="module")
def ray_one_gpu():
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'nascore[ray]')")
    if ray.is_initialized():
        pytest.skip("Ray already initialized in this process without the declared GPU")
    module = sys.modules[__name__]
    ray.cloudpickle.register_pickle_by_value(module)
    # address="local": always a fresh instance with the declared GPU, never a cluster another
    # process on this machine may have started
    ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
    ray.cloudpickle.unregister_pickle_by_value(module)


@pytest.mark.timeout(300)
def test_half_gpu_candidates_share_one_gpu_and_whole_ones_queue(ray_one_gpu, tmp_path):
    half = RayExecutor(num_cpus=1, num_gpus=0.5)
    assert half.max_workers == 2  # min(2 CPUs / 1, 1 GPU / 0.5)
    assert RayExecutor(num_cpus=1, num_gpus=0.25).max_workers == 2  # CPUs bound it here
    assert RayExecutor(num_cpus=0.5, num_gpus=0.25).max_workers == 4
    (tmp_path / "half").mkdir()
    a, b = [f.result(timeout=120) for f in [half.submit(hold_gpu, str(tmp_path / "half"), n, 60.0) for n in "ab"]]
    assert a["gpu"] == b["gpu"] == 0.5
    assert a["gpu_ids"] == b["gpu_ids"] == ["0"] and a["visible"] == "0"
    assert a["met"] and b["met"]  # both held the one GPU at the same time

    whole = RayExecutor(num_cpus=1, num_gpus=1)
    assert whole.max_workers == 1
    (tmp_path / "whole").mkdir()
    c, d = [f.result(timeout=120) for f in [whole.submit(hold_gpu, str(tmp_path / "whole"), n, 3.0) for n in "cd"]]
    assert c["gpu"] == d["gpu"] == 1.0
    assert not c["met"] or not d["met"]  # the second could only start after the first let the GPU go
