"""The N-gram/SRM plugin's torch code on CUDA: MetaQNN and ResNet chain networks train
on the device (marker ``cuda``; skipped without a CUDA device,
``NASCORE_CUDA_TESTS_ON_CPU=1`` runs it on the CPU to check the test itself)."""


import numpy as np
import pytest
import torch

import nascore
from nascore.data import load_task
from nascore.training import Trainer
from nascore.testing import cuda_test_device

pytestmark = pytest.mark.cuda


@pytest.fixture
def device():
    return cuda_test_device()


@pytest.mark.parametrize("space_name, options", [("metaqnn", {"width": 0.0625}), ("resnet-chain", {"max_blocks": 3})])
def test_chain_networks_train_on_the_device(device, space_name, options):
    task = load_task({"dataset": "digits", "seed": 0, "subset": 256, "eval_subset": 128})
    space = nascore.create("search_space", space_name, **options)
    arch = space.sample(np.random.default_rng(0))
    torch.manual_seed(0)
    model = space.build(arch, task)
    before = [p.detach().clone() for p in model.parameters()]
    fit = Trainer(epochs=1, batch_size=64, device=str(device), precision="bf16").fit(model, task, seed=0)
    assert all(p.device.type == device.type for p in model.parameters())
    assert any(not torch.equal(p.detach().cpu(), b) for p, b in zip(model.parameters(), before))
    assert np.isfinite(fit.curve[0]["train_loss"])
