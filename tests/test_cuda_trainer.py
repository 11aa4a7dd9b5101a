"""The core Trainer on CUDA (marker ``cuda``: skipped without a CUDA device).

``NASCORE_CUDA_TESTS_ON_CPU=1`` runs these on the CPU instead, which checks the tests
themselves on a machine without a GPU (fp16 and the sync checks need real CUDA and are
skipped then)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from nascore.data import load_task
from nascore.training import Trainer
from nascore.testing import cuda_test_device

pytestmark = pytest.mark.cuda


@pytest.fixture
def device():
    return cuda_test_device()


def _cnn():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 4 * 4, 10),
    )


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_trainer_trains_digits_on_cuda(device, precision):
    if precision == "fp16" and device.type != "cuda":
        pytest.skip("fp16 needs CUDA")
    task = load_task({"dataset": "digits"})
    model = _cnn()
    trainer = Trainer(epochs=4, batch_size=64, lr=0.05, device=str(device), precision=precision,
                      channels_last=True, random_crop=True, hflip=False, cutout=2)
    fit = trainer.fit(model, task, seed=0)
    assert all(p.device.type == device.type for p in model.parameters())
    assert fit.curve[-1]["train_loss"] < fit.curve[0]["train_loss"]
    assert fit.curve[-1]["valid_accuracy"] > 80.0  # 10 classes: chance is 10%


def test_trainer_does_not_synchronize_per_step(device):
    """CUDA's sync debug mode reports every host synchronization: an epoch of ~22 steps
    may cost a handful (the epoch's loss, validation), never one per step."""
    if device.type != "cuda":
        pytest.skip("needs CUDA's sync debug mode")
    task = load_task({"dataset": "digits"})
    trainer = Trainer(epochs=2, batch_size=48, lr=0.05, device="cuda", precision="fp16", random_crop=True,
                      hflip=True, cutout=2)
    model = _cnn()
    trainer.fit(model, task, seed=0)  # warm-up: lazy CUDA initialization syncs
    steps = 2 * (len(task.train) // 48)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            trainer.fit(_cnn(), task, seed=1)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchroniz" in str(w.message).lower()]
    assert len(syncs) < steps / 2, [str(w.message) for w in syncs[:5]]


def test_streamed_image_folder_trains_on_cuda(device, tmp_path):
    """The DataLoader path with pinned memory and non_blocking copies."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(2):
        (tmp_path / f"c{c}").mkdir()
        for i in range(24):
            pixels = np.clip(rng.normal(80 + 100 * c, 30, (8, 8, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / f"c{c}" / f"{i}.png")
    task = load_task({"dataset": "imagefolder", "root": str(tmp_path), "stream": True, "workers": 1})
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, 2))
    fit = Trainer(epochs=3, batch_size=8, lr=0.05, device=str(device), random_crop=True).fit(model, task, seed=0)
    assert next(model.parameters()).device.type == device.type
    assert fit.curve[-1]["valid_accuracy"] is not None
