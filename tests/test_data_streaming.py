"""Streaming data: an image folder over the (test-lowered) size threshold is read batch
by batch through a DataLoader, and training from it matches the in-memory path on the
same data -- same batches, augmentations and weights for a seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nascore.data import ImageFolder, Split, StreamSplit, load_task
from nascore.errors import ConfigError
from nascore.training import Trainer

torch.set_num_threads(1)

SIDE = 12
PER_CLASS = 40


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Three classes of 40 RGB 12x12 PNGs whose mean colour depends on the class."""
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for c in range(3):
        (root / f"class{c}").mkdir()
        for i in range(PER_CLASS):
            base = np.zeros((SIDE, SIDE, 3))
            base[..., c] = 120
            pixels = np.clip(base + rng.normal(60, 40, (SIDE, SIDE, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / f"class{c}" / f"{i:03d}.png")
    return root


def _bytes_mb():
    return 3 * PER_CLASS * 3 * SIDE * SIDE * 4 / 2**20


def test_small_folder_stays_in_memory_and_large_one_streams(folder):
    assert _bytes_mb() < 2048  # the default threshold keeps this folder in memory
    mem = ImageFolder(root=str(folder)).load()
    assert isinstance(mem.train, Split) and "streaming" not in mem.meta
    streamed = ImageFolder(root=str(folder), stream_above_mb=_bytes_mb() / 2, workers=0).load()
    assert isinstance(streamed.train, StreamSplit) and streamed.meta["streaming"]
    assert ImageFolder(root=str(folder), stream_above_mb=_bytes_mb() * 2).load().meta.get("streaming") is None
    assert isinstance(ImageFolder(root=str(folder), stream=True, workers=0).load().valid, StreamSplit)
    with pytest.raises(ConfigError, match="streams its .* images .* set stream=false"):
        streamed.train.X  # noqa: B018


def test_streamed_images_equal_the_in_memory_tensors(folder):
    mem = ImageFolder(root=str(folder)).load()
    st = ImageFolder(root=str(folder), stream=True, workers=2).load()
    assert st.input_shape == mem.input_shape == (3, SIDE, SIDE) and st.num_classes == 3
    # float64 sums vs float32 reductions: the statistics agree to float32 rounding
    assert np.allclose(st.meta["mean"], mem.meta["mean"], rtol=1e-5)
    assert np.allclose(st.meta["std"], mem.meta["std"], rtol=1e-5)
    for name in ("train", "valid", "test"):
        a, b = getattr(mem, name), getattr(st, name)
        assert torch.equal(a.y, b.y)
        X = torch.cat([xb for xb, _ in b.loader([list(range(len(b)))])])
        assert torch.allclose(X, a.X, rtol=1e-5, atol=1e-5)


def _cnn():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(8 * (SIDE // 2) ** 2, 3),
    )


def test_training_from_the_stream_matches_the_in_memory_path(folder):
    """Same seed: the streamed batches follow the same generator permutation and draw the
    same augmentations, so the weights agree up to the inputs' float32 rounding."""
    trainer = Trainer(epochs=3, batch_size=16, lr=0.05, device="cpu", random_crop=True, hflip=True, cutout=3)
    mem = ImageFolder(root=str(folder)).load()
    st = ImageFolder(root=str(folder), stream_above_mb=_bytes_mb() / 2, workers=2).load()
    a, b = _cnn(), _cnn()
    fa = trainer.fit(a, mem, seed=5)
    fb = trainer.fit(b, st, seed=5)
    for ra, rb in zip(fa.curve, fb.curve):
        assert rb["train_loss"] == pytest.approx(ra["train_loss"], rel=1e-4)
        assert rb["valid_accuracy"] == pytest.approx(ra["valid_accuracy"], abs=1e-9)
    for (name, wa), wb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(wa.float(), wb.float(), rtol=1e-4, atol=1e-5), name
    assert trainer.accuracy(a, mem.test) == pytest.approx(trainer.accuracy(b, st.test))
    assert fa.curve[-1]["valid_accuracy"] > 60  # it learned the colour (chance: 33%)
    # a different seed gives other batches: the comparison above is not vacuous
    c = _cnn()
    trainer.fit(c, mem, seed=6)
    assert not torch.allclose(a[0].weight, c[0].weight, atol=1e-3)


@pytest.mark.data
def test_mnist_streams_through_the_trainer_like_in_memory():
    spec = {"dataset": "mnist", "subset": 600, "eval_subset": 300}
    mem = load_task(spec)
    st = load_task({**spec, "stream": True, "workers": 0})
    assert isinstance(st.train, StreamSplit) and torch.equal(st.train.y, mem.train.y)
    trainer = Trainer(epochs=1, batch_size=64, lr=0.05, device="cpu", random_crop=True)
    a, b = _mnist_cnn(), _mnist_cnn()
    fa, fb = trainer.fit(a, mem, seed=0), trainer.fit(b, st, seed=0)
    assert fb.curve[0]["train_loss"] == pytest.approx(fa.curve[0]["train_loss"], rel=1e-4)
    for wa, wb in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.allclose(wa.float(), wb.float(), rtol=1e-4, atol=1e-5)


def _mnist_cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 5, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 12 * 12, 10))


def test_streamed_flattened_images_equal_the_in_memory_features(folder):
    mem = ImageFolder(root=str(folder), flatten=True).load()
    st = ImageFolder(root=str(folder), flatten=True, stream=True, workers=0).load()
    assert st.kind == mem.kind == "tabular" and st.input_shape == mem.input_shape == (3 * SIDE * SIDE,)
    X = torch.cat([xb for xb, _ in st.valid.loader([list(range(len(st.valid)))])])
    assert torch.allclose(X, mem.valid.X, rtol=1e-5, atol=1e-5)
