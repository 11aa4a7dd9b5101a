"""Datasets and tasks: seeded stratified splits, preprocessing, local torchvision files,
user data and the missing-dataset message."""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np
import pytest
import torch
from nascore.testing import require_data

import nascore
from nascore.data import Task, clear_task_cache, load_task
from nascore.errors import ConfigError, DatasetNotFoundError, UnknownComponentError


def _class_counts(y, k):
    return torch.bincount(y, minlength=k).double()


def test_builtin_datasets_are_registered():
    names = {c.name for c in nascore.components("dataset")}
    assert {"digits", "iris", "wine", "breast_cancer", "mnist", "fashion-mnist", "cifar10", "cifar100",
            "imagefolder", "csv"} <= names


def test_digits_splits_are_disjoint_stratified_and_sized():
    task = load_task({"dataset": "digits"})
    assert isinstance(task, Task) and task.kind == "image"
    assert task.input_shape == (1, 8, 8) and task.num_classes == 10
    idx = task.meta["indices"]
    sets = {k: set(v) for k, v in idx.items()}
    assert not (sets["train"] & sets["valid"] or sets["train"] & sets["test"] or sets["valid"] & sets["test"])
    assert len(sets["train"] | sets["valid"] | sets["test"]) == 1797
    # 20% / 20% of 1797, rounded
    assert (len(task.test), len(task.valid), len(task.train)) == (359, 359, 1079)
    full = _class_counts(torch.cat([task.train.y, task.valid.y, task.test.y]), 10) / 1797
    for split in (task.train, task.valid, task.test):
        expected = full * len(split)
        # stratification rounds per class: off by at most one sample
        assert torch.all((_class_counts(split.y, 10) - expected).abs() <= 1.0)
    assert task.train.X.dtype == torch.float32 and task.train.y.dtype == torch.int64


def test_digits_normalized_with_train_statistics():
    task = load_task({"dataset": "digits"})
    X = task.train.X
    assert abs(float(X.mean())) < 1e-5 and abs(float(X.std()) - 1.0) < 1e-5
    raw = torch.tensor(__import__("sklearn.datasets").datasets.load_digits().data, dtype=torch.float32) / 16
    mean, std = task.meta["mean"][0], task.meta["std"][0]
    rows = torch.tensor(task.meta["indices"]["test"])
    assert torch.allclose(task.test.X.reshape(len(rows), -1), (raw[rows] - mean) / std, atol=1e-5)


def test_splits_are_seeded():
    a = load_task({"dataset": "digits", "seed": 3})
    b = load_task({"dataset": "digits", "seed": 3, "subset": None})  # same split, separate cache entry
    c = load_task({"dataset": "digits", "seed": 4})
    assert a.meta["indices"] == b.meta["indices"]
    assert torch.equal(a.train.X, b.train.X)
    assert a.meta["indices"]["test"] != c.meta["indices"]["test"]


def test_digits_flatten_gives_64_features():
    img = load_task({"dataset": "digits"})
    flat = load_task({"dataset": "digits", "flatten": True})
    assert flat.kind == "tabular" and flat.input_shape == (64,)
    assert flat.meta["image_shape"] == (1, 8, 8)
    assert torch.equal(flat.train.X, img.train.X.reshape(len(img.train), 64))


def test_subset_and_eval_subset_are_stratified():
    task = load_task({"dataset": "digits", "subset": 200, "eval_subset": 100})
    assert (len(task.train), len(task.valid), len(task.test)) == (200, 100, 100)
    assert torch.all((_class_counts(task.train.y, 10) - 20).abs() <= 1.0)
    full = load_task({"dataset": "digits"})
    assert set(task.meta["indices"]["train"]) <= set(full.meta["indices"]["train"])


@pytest.mark.parametrize("name,features,classes,n", [
    ("iris", 4, 3, 150), ("wine", 13, 3, 178), ("breast_cancer", 30, 2, 569)])
def test_tabular_sklearn_sets_standardized_on_train(name, features, classes, n):
    task = load_task({"dataset": name})
    assert task.kind == "tabular" and task.input_shape == (features,) and task.num_classes == classes
    assert len(task.train) + len(task.valid) + len(task.test) == n
    assert torch.allclose(task.train.X.mean(0), torch.zeros(features), atol=1e-5)
    assert torch.allclose(task.train.X.std(0), torch.ones(features), atol=1e-4)
    # valid/test use the train statistics, so they are not exactly standardized
    assert not torch.allclose(task.test.X.mean(0), torch.zeros(features), atol=1e-5)


def test_load_task_caches_and_validates():
    clear_task_cache()
    a = load_task({"dataset": "iris", "seed": 1})
    assert load_task({"seed": 1, "dataset": "iris"}) is a
    assert load_task({"name": "iris", "seed": 1}) is a
    with pytest.raises(ConfigError, match="unknown parameter 'sed'.*did you mean 'seed'"):
        load_task({"dataset": "iris", "sed": 1})
    with pytest.raises(UnknownComponentError, match="did you mean 'digits'"):
        load_task({"dataset": "digitz"})
    with pytest.raises(ConfigError, match="valid_fraction \\+ test_fraction must be < 1"):
        load_task({"dataset": "iris", "valid_fraction": 0.5, "test_fraction": 0.5})
    with pytest.raises(ConfigError, match="subset=5000 exceeds"):
        load_task({"dataset": "iris", "subset": 5000})


# --------------------------------------------------------------------------- torchvision


def test_mnist_loads_from_nascore_data(tmp_path):
    raw = require_data("MNIST/raw")
    before = sorted(os.listdir(raw))
    task = load_task({"dataset": "mnist", "subset": 500, "eval_subset": 300, "cache": str(tmp_path)})
    assert task.input_shape == (1, 28, 28) and task.num_classes == 10
    assert (len(task.train), len(task.valid), len(task.test)) == (500, 300, 300)
    assert (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").stat().st_size == 47040016
    assert sorted(os.listdir(raw)) == before  # nothing written next to the source files
    # per-channel statistics of MNIST's train images: mean 0.1307, std 0.3081
    assert task.meta["mean"][0] == pytest.approx(0.1307, abs=0.01)
    assert task.meta["std"][0] == pytest.approx(0.3081, abs=0.01)
    full = load_task({"dataset": "mnist", "eval_subset": 10, "cache": str(tmp_path)})
    assert len(full.train) == 54000 and len(full.meta["indices"]["valid"]) == 10


def _write_idx(path, array, magic):
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape))
        f.write(array.astype(np.uint8).tobytes())


def _fake_fashion(root, n_train=60, n_test=20):
    """Tiny Fashion-MNIST in torchvision's layout whose pixels encode the label."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = np.repeat((labels * 20)[:, None, None], 28 * 28, axis=1).reshape(n, 28, 28)
        _write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", images, 0x803)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", labels, 0x801)
    return raw


def test_gz_files_extracted_into_cache_not_source(tmp_path):
    raw = _fake_fashion(tmp_path / "src")
    for p in [raw, raw.parent, raw.parent.parent]:
        p.chmod(0o555)
    try:
        task = load_task({"dataset": "fashion-mnist", "root": str(tmp_path / "src"),
                          "cache": str(tmp_path / "cache"), "valid_fraction": 0.2})
    finally:
        for p in [raw, raw.parent, raw.parent.parent]:
            p.chmod(0o755)
    assert sorted(os.listdir(raw)) == sorted(f"{p}-{k}-idx{d}-ubyte.gz" for p in ("train", "t10k")
                                             for k, d in (("images", 3), ("labels", 1)))
    assert (tmp_path / "cache" / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte").is_file()
    assert (len(task.train), len(task.valid), len(task.test)) == (48, 12, 20)
    # pixel value 20*label/255, normalized: the label is recoverable from the image
    mean, std = task.meta["mean"][0], task.meta["std"][0]
    pixel = task.test.X[:, 0, 0, 0] * std + mean
    assert torch.allclose(pixel * 255 / 20, task.test.y.float(), atol=1e-3)


@pytest.mark.parametrize("name,expected", [("mnist", "MNIST"), ("cifar10", "cifar-10-python.tar.gz"),
                                           ("cifar100", "cifar-100-python")])
def test_missing_dataset_is_one_actionable_line(tmp_path, name, expected):
    where = tmp_path / "nowhere"
    with pytest.raises(DatasetNotFoundError) as info:
        load_task({"dataset": name, "root": str(where), "cache": str(tmp_path / "cache")})
    message = str(info.value)
    assert "\n" not in message
    assert str(where) in message and expected in message and "download=true" in message


# --------------------------------------------------------------------------- user data


def test_csv_dataset_with_categorical_column(tmp_path):
    rng = np.random.default_rng(0)
    lines = ["size,colour,label"]
    for i in range(120):
        label = ["cat", "dog", "eel"][i % 3]
        lines.append(f"{rng.normal(i % 3, 0.1):.4f},{['red', 'blue'][i % 2]},{label}")
    path = tmp_path / "pets.csv"
    path.write_text("\n".join(lines) + "\n")
    task = load_task({"dataset": "csv", "path": str(path), "target": "label"})
    assert task.kind == "tabular" and task.input_shape == (3,) and task.num_classes == 3
    assert task.meta["class_names"] == ["cat", "dog", "eel"]
    assert task.meta["feature_names"] == ["size", "colour=blue", "colour=red"]
    assert len(task.train) + len(task.valid) + len(task.test) == 120
    with pytest.raises(ConfigError, match="no column 'kind'"):
        load_task({"dataset": "csv", "path": str(path), "target": "kind"})
    with pytest.raises(DatasetNotFoundError, match="no file"):
        load_task({"dataset": "csv", "path": str(tmp_path / "none.csv")})


def test_imagefolder_dataset(tmp_path):
    from PIL import Image

    for c, value in (("dark", 30), ("light", 220)):
        (tmp_path / c).mkdir()
        for i in range(10):
            Image.new("RGB", (12 + i % 2, 12), (value, value, value)).save(tmp_path / c / f"{i}.png")
    task = load_task({"dataset": "imagefolder", "root": str(tmp_path), "image_size": 8, "grayscale": True})
    assert task.kind == "image" and task.input_shape == (1, 8, 8) and task.num_classes == 2
    assert task.meta["class_names"] == ["dark", "light"]
    assert (len(task.train), len(task.valid), len(task.test)) == (12, 4, 4)
    with pytest.raises(ConfigError, match="different sizes; set image_size"):
        load_task({"dataset": "imagefolder", "root": str(tmp_path)})
    with pytest.raises(DatasetNotFoundError, match="is not a folder"):
        load_task({"dataset": "imagefolder", "root": str(tmp_path / "none")})
