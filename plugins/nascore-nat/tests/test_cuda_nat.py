"""NAT torch code on CUDA: Algorithm 1 (supernet weights and the GCN policy's gradient)
on the device (marker ``cuda``; skipped without a CUDA device,
``NASCORE_CUDA_TESTS_ON_CPU=1`` runs it on the CPU to check the test itself)."""


import numpy as np
import pytest
import torch

from nascore_nat import genotypes
from nascore_nat.transformer import NeuralArchitectureTransformer
from nascore.testing import cuda_test_device

pytestmark = pytest.mark.cuda


@pytest.fixture
def device():
    return cuda_test_device()


def test_algorithm_1_runs_on_the_device(device, small_digits):
    beta = genotypes.published("DARTS_V2")
    nat = NeuralArchitectureTransformer(epochs=1, C=4, layers=3, batch_size=64, inputs="neighbourhood", seed=0,
                                        policy="gcn", device=str(device))
    nat.fit(small_digits, beta, cost_network=(4, 3))
    assert all(p.device.type == device.type for p in nat.supernet_.parameters())
    assert all(p.device.type == device.type for p in nat.policy_.parameters())
    last = nat.history_[-1]
    assert np.isfinite(last["w_loss"]) and np.isfinite(last["entropy"])  # both phases ran
    alpha, info = nat.transform(beta, small_digits, samples=3)
    assert info["candidates"] and alpha.normal.num_nodes == beta.normal.num_nodes
