"""STEERAGE torch code on CUDA: SCANN's and NeST's masked layers grow and prune on the
model's device (marker ``cuda``; skipped without a CUDA device,
``NASCORE_CUDA_TESTS_ON_CPU=1`` runs it on the CPU to check the test itself)."""


import pytest
import torch

import nascore
from nascore.training import Trainer
from nascore_steerage.nest import NeST
from nascore_steerage.scann import SCANN
from nascore.testing import cuda_test_device

pytestmark = pytest.mark.cuda


@pytest.fixture
def device():
    return cuda_test_device()


def _ctx(device):
    class Ctx:
        seed = 0

        def trainer(self, **overrides):
            return Trainer(**{"device": str(device), "optimizer": "adam", "lr": 0.01, "batch_size": 64, **overrides})

    return Ctx()


def _on(model, device):
    tensors = list(model.parameters()) + list(model.buffers())
    return tensors and all(t.device.type == device.type for t in tensors)


def test_scann_grows_and_prunes_on_the_device(device, digits_tabular):
    space = nascore.create("search_space", "ffnn", neurons_low=32, neurons_high=64, neurons_step=32, max_layers=2)
    arch = space.make({"layers": 2, "n1": 64, "n2": 32, "dr_method": "pca", "dr_ratio": 2.0, "quant_bits": 32})
    model = space.build(arch, digits_tabular)
    _ctx(device).trainer(epochs=2).fit(model, digits_tabular)
    res = SCANN(scheme="A", iterations=2, epochs=1, final_epochs=1, cv_folds=0).compress(
        arch, model, digits_tabular, _ctx(device))
    assert _on(res.model, device)
    assert res.after["params"] <= res.before["params"] * 2


def test_nest_grows_and_prunes_masks_on_the_device(device, digits_images):
    space = nascore.create("search_space", "lenet5", input_size=8)
    arch = space.make({"image_filter": "lanczos", "image_size": 8, "kernel": 3, "conv1": 6, "pool1": "max",
                       "conv2": 16, "pool2": "avg", "fc1": 4, "fc2": 4, "fc3": 4, "quant_bits": 32})
    torch.manual_seed(0)
    model = space.build(arch, digits_images)
    _ctx(device).trainer(epochs=2).fit(model, digits_images)
    res = NeST(iterations=3, epochs=1, candidates=2, prune_ratio=0.5, area_ratio=0.4).compress(
        arch, model, digits_images, _ctx(device))
    assert _on(res.model, device)
    assert [s["op"] for s in res.info["operations"]] == ["grow", "area", "prune"]
    x = digits_images.test.X[:2].to(device)
    assert res.model(x).shape == (2, 10)
