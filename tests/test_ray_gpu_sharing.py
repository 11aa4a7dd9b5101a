"""GPU sharing under Ray, on a CPU machine: Ray is started with one declared GPU (a
logical resource; no device is touched), so the scheduling is Ray's real one.  Two
candidates asking 0.5 GPU each run at the same time on that GPU; two asking 1 GPU each
run one after the other."""

from __future__ import annotations

import os
import sys
import time

import pytest

from nascore.executors import RayExecutor

HOLD = 3.0  # seconds each job holds its GPU share


def hold_gpu(seconds):
    """A candidate: what Ray assigned to it, and when it ran."""
    import ray

    start = time.time()
    time.sleep(seconds)
    ctx = ray.get_runtime_context()
    return {"start": start, "end": time.time(), "gpu": ctx.get_assigned_resources().get("GPU"),
            "gpu_ids": [str(i) for i in ray.get_gpu_ids()], "visible": os.environ.get("CUDA_VISIBLE_DEVICES")}


@pytest.fixture(scope="module")
def ray_one_gpu():
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'nascore[ray]')")
    if ray.is_initialized():
        pytest.skip("Ray already initialized in this process without the declared GPU")
    module = sys.modules[__name__]
    ray.cloudpickle.register_pickle_by_value(module)
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
    ray.cloudpickle.unregister_pickle_by_value(module)


def _overlap(a, b) -> float:
    return min(a["end"], b["end"]) - max(a["start"], b["start"])


@pytest.mark.timeout(300)
def test_half_gpu_candidates_share_one_gpu_and_whole_ones_queue(ray_one_gpu):
    half = RayExecutor(num_cpus=1, num_gpus=0.5)
    assert half.max_workers == 2  # min(2 CPUs / 1, 1 GPU / 0.5)
    assert RayExecutor(num_cpus=1, num_gpus=0.25).max_workers == 2  # CPUs bound it here
    assert RayExecutor(num_cpus=0.5, num_gpus=0.25).max_workers == 4
    a, b = [f.result(timeout=120) for f in [half.submit(hold_gpu, HOLD) for _ in range(2)]]
    assert a["gpu"] == b["gpu"] == 0.5
    assert a["gpu_ids"] == b["gpu_ids"] == ["0"] and a["visible"] == "0"
    assert _overlap(a, b) > 0.25 * HOLD  # both held the same GPU at once (allowing worker start-up skew)

    whole = RayExecutor(num_cpus=1, num_gpus=1)
    assert whole.max_workers == 1
    c, d = [f.result(timeout=120) for f in [whole.submit(hold_gpu, HOLD) for _ in range(2)]]
    assert c["gpu"] == d["gpu"] == 1.0
    assert _overlap(c, d) <= 0.0  # the second waited for the GPU
