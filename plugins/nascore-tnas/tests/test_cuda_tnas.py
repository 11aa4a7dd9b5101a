"""TNAS torch code on CUDA: the transformer VAE and the weight-sharing supernet (marker
``cuda``; skipped without a CUDA device, ``NASCORE_CUDA_TESTS_ON_CPU=1`` runs it on the
CPU to check the test itself)."""


import numpy as np
import pytest
import torch

import nascore
from nascore.data import load_task
from nascore_tnas.distribution import LearnedDistribution
from nascore_tnas.supernet import PathSupernet
from nascore_tnas.vocabulary import ArchitectureVocabulary
from nascore.testing import cuda_test_device

pytestmark = pytest.mark.cuda


@pytest.fixture
def device():
    return cuda_test_device()


def test_vae_updates_and_samples_on_the_device(device):
    space = nascore.create("search_space", "nb201")
    dist = LearnedDistribution(ArchitectureVocabulary(space), d_model=16, latent_dim=4, steps=5, batch_size=8,
                               device=str(device), seed=0)
    assert all(p.device.type == device.type for p in dist.vae.parameters())
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(16)]
    before = [p.detach().clone() for p in dist.vae.parameters()]
    dist.update(archs, list(range(16)))
    assert any(not torch.equal(p, b) for p, b in zip(dist.vae.parameters(), before))
    for arch in dist.sample(8):
        space.validate(arch.genome)


def test_path_supernet_trains_on_the_device(device):
    space = nascore.create("search_space", "nb201", C=4, N=1)
    task = load_task({"dataset": "digits", "seed": 0, "subset": 256, "eval_subset": 128})
    sn = PathSupernet(space, task, steps_total=4, batch_size=32, device=str(device), seed=0)
    assert sn.device.type == device.type
    assert all(p.device.type == device.type for p in sn.net.parameters())
    rng = np.random.default_rng(0)
    paths = [space.sample(rng) for _ in range(2)]
    before = [p.detach().clone() for p in sn.net.parameters()]
    sn.train(paths, 4)
    assert any(not torch.equal(p, b) for p, b in zip(sn.net.parameters(), before))
    out = sn.net(sn.Xv[:4], path=space.to_path(paths[0]))
    assert out.shape == (4, 10) and out.device.type == device.type
