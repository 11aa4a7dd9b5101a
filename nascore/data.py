"""Tasks and datasets.

A :class:`Task` holds fixed, seeded train / valid / test splits as tensors plus the
input shape, number of classes and kind (``"image"`` or ``"tabular"``).  Datasets are
attrs components whose fields are their options and whose ``load()`` returns a Task;
they are registered by :mod:`nascore.builtin.datasets` and built from a config table by
:func:`load_task`.

Preprocessing, the same for every dataset of a kind:

* images are scaled to [0, 1] and normalized per channel with the mean and standard
  deviation of the *train* split (``meta["mean"]``, ``meta["std"]``); ``flatten=true``
  turns them into feature vectors (kind ``"tabular"``, ``meta["image_shape"]`` keeps
  the original shape) -- STEERAGE's FFNN reads ``digits`` as 64 features that way;
* tabular features are standardized with train statistics only.

Data that does not fit: ``imagefolder`` and the torchvision datasets give
:class:`StreamSplit` splits -- labels in memory, images read batch by batch through a
torch DataLoader (``workers`` processes, pinned memory on CUDA) and normalized the same
way -- when the float32 pixels of the kept rows exceed ``stream_above_mb`` or when
``stream=true``.  Small data stays in memory (the default, and the fast path).

Splits are stratified and depend only on ``seed``.  Raw pixels stay ``uint8`` (numpy)
until the splits and subsets are chosen, so only the rows a task keeps become float32.
Heavy libraries (torch, torchvision, scikit-learn) are imported by ``load()``, never at
registration time.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, ClassVar

import attrs

from .errors import ConfigError, DatasetNotFoundError
from .params import in_range, param, resolved_params

IMAGE = "image"
TABULAR = "tabular"

# --------------------------------------------------------------------------- tasks


def _shape(t) -> str:
    return f"{str(t.dtype).replace('torch.', '')}{list(t.shape)}"


@attrs.define(repr=False)
class Split:
    """One split: ``X`` float32 (images N×C×H×W normalized, tabular N×F standardized),
    ``y`` int64 class labels."""

    X: Any
    y: Any

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def __repr__(self) -> str:
        return f"Split(X={_shape(self.X)}, y={_shape(self.y)})"


class StreamSplit:
    """A split whose images stay out of memory: ``y`` (int64 labels) is a tensor,
    images are read and normalized per sample by ``dataset[i] -> (x, label)`` and come
    in batches from :meth:`loader`.  ``X`` is refused with a clear error; code that
    needs all pixels at once needs an in-memory task (``stream=false``)."""

    def __init__(self, dataset, y, *, image_shape: tuple, workers: int = 0):
        self.dataset, self.y = dataset, y
        self.image_shape = tuple(image_shape)
        self.workers = workers

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def __repr__(self) -> str:
        return f"StreamSplit(X=float32{[len(self), *self.image_shape]} streamed, y={_shape(self.y)}, workers={self.workers})"

    @property
    def X(self):
        raise ConfigError(
            f"this split streams its {len(self)} images from storage (stream=true or more than "
            "stream_above_mb); this component needs them in memory: set stream=false on the dataset"
        )

    def loader(self, batches, *, pin_memory: bool = False):
        """A DataLoader giving ``(X, y)`` for each list of row indices in ``batches``,
        in that order (``workers`` processes; pinned host memory for CUDA copies)."""
        from torch.utils.data import DataLoader

        return DataLoader(self.dataset, batch_sampler=batches, num_workers=self.workers,
                          pin_memory=pin_memory, persistent_workers=False)


class _NormalizedImages:
    """Map-style dataset: row ``i`` of a split read as uint8 C×H×W by ``read(row)``,
    scaled by ``1/scale`` and normalized per channel exactly as :func:`image_task` does
    in memory (optionally flattened)."""

    def __init__(self, read, rows, labels, *, scale: float, mean=None, std=None, flatten: bool = False):
        self.read, self.rows, self.labels = read, list(rows), list(labels)
        self.scale, self.flatten = scale, flatten
        self.mean, self.std = mean, std

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i):
        import numpy as np
        import torch

        x = torch.from_numpy(np.array(self.read(self.rows[i]), dtype=np.float32))
        x.mul_(1.0 / self.scale)
        if self.mean is not None:
            x.sub_(self.mean[:, None, None]).div_(self.std[:, None, None])
        return (x.reshape(-1) if self.flatten else x), int(self.labels[i])


def _stream_stats(dataset, workers: int):
    """Per-channel mean and (unbiased) standard deviation of a split's scaled pixels,
    accumulated in float64 over one streamed pass, as float32 like :func:`image_task`'s."""
    import torch
    from torch.utils.data import DataLoader

    total = sq = None
    count = 0
    for xb, _ in DataLoader(dataset, batch_size=256, num_workers=workers):
        xb = xb.double()
        s1, s2 = xb.sum(dim=(0, 2, 3)), (xb * xb).sum(dim=(0, 2, 3))
        total, sq = (s1, s2) if total is None else (total + s1, sq + s2)
        count += xb.shape[0] * xb.shape[2] * xb.shape[3]
    mean = total / count
    var = (sq - count * mean * mean) / max(count - 1, 1)
    std = var.clamp_min(0).sqrt()
    std = torch.where(std > 0, std, torch.ones_like(std))
    return mean.float(), std.float()


def stream_image_task(name, read, idx: dict, labels: dict, *, image_shape: tuple, scale: float,
                      num_classes: int, flatten: bool, workers: int, meta: dict, test_read=None) -> Task:
    """An image Task of :class:`StreamSplit` splits: ``read(row)`` gives the uint8 C×H×W
    pixels of a row of the pool (``test_read`` for the test split when it has its own
    pool), ``idx[split]`` the rows and ``labels[split]`` their labels.  Normalization
    uses the train split's per-channel statistics, computed in one streamed pass."""
    import numpy as np
    import torch

    def dataset(split, mean=None, std=None):
        r = test_read if split == "test" and test_read is not None else read
        # the statistics pass (no mean yet) reads images unflattened
        return _NormalizedImages(r, idx[split], labels[split], scale=scale, mean=mean, std=std,
                                 flatten=flatten and mean is not None)

    mean, std = _stream_stats(dataset("train"), workers)
    shape = (int(np.prod(image_shape)),) if flatten else tuple(image_shape)
    splits = {k: StreamSplit(dataset(k, mean, std), torch.as_tensor(np.asarray(labels[k], dtype=np.int64)),
                             image_shape=shape, workers=workers) for k in ("train", "valid", "test")}
    meta = {**meta, "mean": mean.tolist(), "std": std.tolist(), "image_shape": tuple(image_shape), "streaming": True}
    return Task(name, TABULAR if flatten else IMAGE, shape, num_classes,
                splits["train"], splits["valid"], splits["test"], meta)


@attrs.define(kw_only=True, slots=False)
class StreamOptions:
    """When an image dataset streams instead of living in memory."""

    stream: bool = param(False, help="always stream images through a DataLoader instead of holding them in memory")
    stream_above_mb: float = param(2048.0, help="stream when the kept images take more MB as float32",
                                   validator=in_range(0.0))
    workers: int = param(2, help="DataLoader worker processes when streaming (0: read in the main process)",
                         validator=in_range(0))

    def streams(self, rows: int, image_shape) -> bool:
        """Whether ``rows`` images of ``image_shape`` stream (size as float32 in MB)."""
        import math

        mb = rows * math.prod(image_shape) * 4 / 2**20
        return self.stream or mb > self.stream_above_mb


@attrs.define(repr=False)
class Task:
    """A classification task with fixed splits (see ``docs/contracts.md``)."""

    name: str
    kind: str
    input_shape: tuple
    num_classes: int
    train: Split
    valid: Split
    test: Split
    meta: dict = attrs.field(factory=dict)

    def __repr__(self) -> str:
        return (
            f"Task({self.name!r}, kind={self.kind!r}, input_shape={self.input_shape}, "
            f"num_classes={self.num_classes}, train={len(self.train)}, valid={len(self.valid)}, "
            f"test={len(self.test)})"
        )


# --------------------------------------------------------------------------- locations


def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


def data_root() -> Path:
    """``$NASCORE_DATA``, default ``../shared/data`` relative to the repository root."""
    env = os.environ.get("NASCORE_DATA")
    return Path(env).expanduser() if env else (repo_root().parent / "shared" / "data").resolve()


def cache_root() -> Path:
    """Writable cache for extracted archives: ``$NASCORE_CACHE`` or ``~/.cache/nascore``."""
    env = os.environ.get("NASCORE_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "nascore"


def _write_atomic(dest: Path, fill) -> None:
    """Create ``dest`` through a temporary file in its folder, so that concurrent
    processes never see a half-written file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            fill(out)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def gunzip_to(src: Path, dest: Path) -> None:
    with gzip.open(src, "rb") as f:
        _write_atomic(dest, lambda out: shutil.copyfileobj(f, out, 1 << 20))


# --------------------------------------------------------------------------- splitting


def stratified_take(idx, y, n: int, seed: int):
    """Split index array ``idx`` into ``(taken, rest)`` with ``len(taken) == n``, keeping
    class proportions (falls back to a plain seeded shuffle when a class is too rare)."""
    import numpy as np

    idx = np.asarray(idx)
    if n >= len(idx):
        return idx, idx[:0]
    if n <= 0:
        return idx[:0], idx
    from sklearn.model_selection import train_test_split

    try:
        taken, rest = train_test_split(idx, train_size=n, stratify=y[idx], random_state=seed)
    except ValueError:
        perm = np.random.default_rng(seed).permutation(idx)
        taken, rest = perm[:n], perm[n:]
    return np.sort(taken), np.sort(rest)


def _check_fractions(inst, attribute, value):
    total = inst.valid_fraction + getattr(inst, "test_fraction", 0.0)
    if total >= 1.0:
        raise ValueError(f"valid_fraction + test_fraction must be < 1, got {total:g}")


@attrs.define(kw_only=True)
class DatasetOptions:
    """Options every dataset shares: the split seed and sizes."""

    name: ClassVar[str] = "dataset"

    seed: int = param(0, help="seed of the train/valid/test split and of the subsets")
    valid_fraction: float = param(
        0.2, help="validation share (of all samples; of the official train set where a test set exists)",
        validator=in_range(0.0, 1.0, low_open=True, high_open=True),
    )
    subset: int | None = param(None, help="keep this many train samples (stratified); none keeps all",
                               validator=in_range(1))
    eval_subset: int | None = param(None, help="keep at most this many valid and test samples each (stratified)",
                                    validator=in_range(1))

    def _fractions_split(self, y):
        """Indices of train/valid/test drawn from one pool by ``valid_fraction``/``test_fraction``."""
        import numpy as np

        n = len(y)
        n_test = max(1, round(self.test_fraction * n))
        n_valid = max(1, round(self.valid_fraction * n))
        test, rest = stratified_take(np.arange(n), y, n_test, self.seed)
        valid, train = stratified_take(rest, y, n_valid, self.seed + 1)
        return self._shrink(train, valid, test, y, y)

    def _official_split(self, y_train, y_test):
        """Valid carved from the official train set; the official test set kept."""
        import numpy as np

        n_valid = max(1, round(self.valid_fraction * len(y_train)))
        valid, train = stratified_take(np.arange(len(y_train)), y_train, n_valid, self.seed + 1)
        return self._shrink(train, valid, np.arange(len(y_test)), y_train, y_test)

    def _shrink(self, train, valid, test, y_pool, y_test_pool) -> dict:
        """Apply ``subset`` to train and ``eval_subset`` to valid and test (stratified)."""
        if self.subset is not None:
            if self.subset > len(train):
                raise ConfigError(f"{self.name}: subset={self.subset} exceeds the {len(train)} train samples")
            train, _ = stratified_take(train, y_pool, self.subset, self.seed + 2)
        if self.eval_subset is not None:
            valid, _ = stratified_take(valid, y_pool, self.eval_subset, self.seed + 3)
            test, _ = stratified_take(test, y_test_pool, self.eval_subset, self.seed + 4)
        return {"train": train, "valid": valid, "test": test}

    def _meta(self, idx: dict, **extra) -> dict:
        """Task metadata: dataset, options and the chosen rows (``indices``: positions
        in the pool each split was drawn from -- the official test set where one exists)."""
        indices = {k: [int(i) for i in v] for k, v in idx.items()}
        return {"dataset": self.name, "options": resolved_params(self), "indices": indices, **extra}


# --------------------------------------------------------------------------- task assembly


def _tensor_pair(X, y):
    import numpy as np
    import torch

    return torch.from_numpy(np.array(X, dtype=np.float32)), torch.from_numpy(np.array(y, dtype=np.int64))


def image_task(name, parts: dict, *, scale: float, num_classes: int, flatten: bool, meta: dict) -> Task:
    """Build an image Task from raw N×C×H×W arrays: scale by ``1/scale`` into [0, 1],
    normalize per channel with the train split's statistics, optionally flatten."""
    import torch

    splits = {k: _tensor_pair(X, y) for k, (X, y) in parts.items()}
    for X, _ in splits.values():
        X.mul_(1.0 / scale)
    Xtr = splits["train"][0]
    mean = Xtr.mean(dim=(0, 2, 3))
    std = Xtr.std(dim=(0, 2, 3))
    std = torch.where(std > 0, std, torch.ones_like(std))
    image_shape = tuple(Xtr.shape[1:])
    out = {}
    for k, (X, y) in splits.items():
        X.sub_(mean[None, :, None, None]).div_(std[None, :, None, None])
        out[k] = Split(X.reshape(len(X), -1) if flatten else X, y)
    meta = {**meta, "mean": mean.tolist(), "std": std.tolist(), "image_shape": image_shape, "scale": scale}
    kind, shape = (TABULAR, (int(Xtr[0].numel()),)) if flatten else (IMAGE, image_shape)
    return Task(name, kind, shape, num_classes, out["train"], out["valid"], out["test"], meta)


def tabular_task(name, parts: dict, *, num_classes: int, meta: dict) -> Task:
    """Build a tabular Task from N×F arrays, standardized with train mean and std."""
    import torch

    splits = {k: _tensor_pair(X, y) for k, (X, y) in parts.items()}
    Xtr = splits["train"][0]
    mean = Xtr.mean(dim=0)
    std = Xtr.std(dim=0) if len(Xtr) > 1 else torch.ones_like(mean)
    std = torch.where(std > 0, std, torch.ones_like(std))
    out = {k: Split((X - mean) / std, y) for k, (X, y) in splits.items()}
    meta = {**meta, "mean": mean.tolist(), "std": std.tolist()}
    return Task(name, TABULAR, (int(Xtr.shape[1]),), num_classes, out["train"], out["valid"], out["test"], meta)


def _pick(X, y, idx: dict, X_test=None, y_test=None) -> dict:
    """The arrays of each split; test rows come from ``X_test`` when given."""
    X_test, y_test = (X, y) if X_test is None else (X_test, y_test)
    return {"train": (X[idx["train"]], y[idx["train"]]), "valid": (X[idx["valid"]], y[idx["valid"]]),
            "test": (X_test[idx["test"]], y_test[idx["test"]])}


# --------------------------------------------------------------------------- scikit-learn


@attrs.define(kw_only=True)
class SklearnDataset(DatasetOptions):
    """A dataset bundled with scikit-learn (no download)."""

    loader: ClassVar[str] = ""
    test_fraction: float = param(0.2, help="test share of all samples",
                                 validator=[in_range(0.0, 1.0, low_open=True, high_open=True), _check_fractions])

    def _raw(self):
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, self.loader)()
        return bunch.data, bunch.target, [str(c) for c in bunch.target_names]

    def load(self) -> Task:
        X, y, classes = self._raw()
        idx = self._fractions_split(y)
        return self._finish(_pick(X, y, idx), self._meta(idx, class_names=classes))

    def _finish(self, parts, meta) -> Task:
        return tabular_task(self.name, parts, num_classes=len(meta["class_names"]), meta=meta)


@attrs.define(kw_only=True)
class Digits(SklearnDataset):
    """scikit-learn's handwritten digits: 1,797 images of 8×8 pixels (values 0-16), 10 classes."""

    name: ClassVar[str] = "digits"
    loader: ClassVar[str] = "load_digits"
    flatten: bool = param(False, help="give 64 features (kind tabular) instead of 1×8×8 images")

    def _finish(self, parts, meta) -> Task:
        parts = {k: (X.reshape(-1, 1, 8, 8), y) for k, (X, y) in parts.items()}
        return image_task(self.name, parts, scale=16.0, num_classes=10, flatten=self.flatten, meta=meta)


@attrs.define(kw_only=True)
class Iris(SklearnDataset):
    """Fisher's iris: 150 samples, 4 features, 3 classes."""

    name: ClassVar[str] = "iris"
    loader: ClassVar[str] = "load_iris"


@attrs.define(kw_only=True)
class Wine(SklearnDataset):
    """UCI wine recognition: 178 samples, 13 features, 3 classes."""

    name: ClassVar[str] = "wine"
    loader: ClassVar[str] = "load_wine"


@attrs.define(kw_only=True)
class BreastCancer(SklearnDataset):
    """Wisconsin diagnostic breast cancer: 569 samples, 30 features, 2 classes."""

    name: ClassVar[str] = "breast_cancer"
    loader: ClassVar[str] = "load_breast_cancer"


# --------------------------------------------------------------------------- torchvision


@attrs.define(kw_only=True)
class TorchvisionDataset(StreamOptions, DatasetOptions):
    """A torchvision dataset read from a local ``root``; its official test set is kept
    and the validation split is carved from the official train set."""

    folder: ClassVar[str] = ""
    tv_class: ClassVar[str] = ""
    root: str | None = param(None, help="folder holding the dataset (torchvision layout); default $NASCORE_DATA")
    cache: str | None = param(None, help="writable folder for extracted files; default $NASCORE_CACHE or ~/.cache/nascore")
    download: bool = param(False, help="download into the cache when the files are missing")
    flatten: bool = param(False, help="give C·H·W features (kind tabular) instead of images")
    valid_fraction: float = param(0.1, help="validation share of the official train set",
                                  validator=in_range(0.0, 1.0, low_open=True, high_open=True))

    def root_path(self) -> Path:
        return Path(self.root).expanduser() if self.root else data_root()

    def cache_path(self) -> Path:
        return Path(self.cache).expanduser() if self.cache else cache_root()

    def load(self) -> Task:
        (Xtr, ytr), (Xte, yte), classes = self._raw(self._locate())
        idx = self._official_split(ytr, yte)
        if self.streams(sum(len(v) for v in idx.values()), Xtr.shape[1:]):
            # torchvision holds these as uint8 arrays: streaming keeps them so (4x smaller
            # than float32) and converts batch by batch, in DataLoader workers
            labels = {"train": ytr[idx["train"]], "valid": ytr[idx["valid"]], "test": yte[idx["test"]]}
            return stream_image_task(self.name, Xtr.__getitem__, idx, labels, image_shape=Xtr.shape[1:],
                                     scale=255.0, num_classes=len(classes), flatten=self.flatten,
                                     workers=self.workers, meta=self._meta(idx, class_names=classes),
                                     test_read=Xte.__getitem__)
        return image_task(self.name, _pick(Xtr, ytr, idx, Xte, yte), scale=255.0, num_classes=len(classes),
                          flatten=self.flatten, meta=self._meta(idx, class_names=classes))

    def _locate(self) -> Path:
        """A root under which the torchvision class finds its files."""
        found = self._find(self.root_path())
        if found is not None:
            return found
        if self.download:
            return self.cache_path()
        raise DatasetNotFoundError(self._missing_message())

    def _missing_message(self) -> str:
        root = self.root_path()
        return (
            f"{self.name}: no {self.folder} files under {root} (looked in {root / self.folder} and {root}); "
            f"put torchvision's {self.folder} files there, set root= or NASCORE_DATA to their folder, "
            "or set download=true"
        )

    def _find(self, root: Path) -> Path | None:
        raise NotImplementedError

    def _tv(self, root: Path, train: bool):
        import torchvision.datasets as tvd

        return getattr(tvd, self.tv_class)(str(root), train=train, download=self.download)


_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@attrs.define(kw_only=True)
class _IdxDataset(TorchvisionDataset):
    """MNIST-format datasets (IDX files, plain or the official ``.gz``)."""

    def _find(self, root: Path) -> Path | None:
        if all((root / self.folder / "raw" / f).is_file() for f in _IDX_FILES):
            return root
        cache = self.cache_path()
        target = cache / self.folder / "raw"
        if all((target / f).is_file() for f in _IDX_FILES):
            return cache
        for raw in (root / self.folder / "raw", root / self.folder, root / "raw", root):
            if all((raw / f).is_file() or (raw / (f + ".gz")).is_file() for f in _IDX_FILES):
                self._materialize(raw, target)
                return cache
        return None

    @staticmethod
    def _materialize(raw: Path, target: Path) -> None:
        """Decompress (or link) the raw files into the cache; the source is only read."""
        target.mkdir(parents=True, exist_ok=True)
        for f in _IDX_FILES:
            if (raw / f).is_file():
                if not (target / f).exists():
                    (target / f).symlink_to((raw / f).resolve())
            else:
                gunzip_to(raw / (f + ".gz"), target / f)

    def _raw(self, root: Path):
        train, test = self._tv(root, True), self._tv(root, False)
        return ((train.data.numpy()[:, None], train.targets.numpy()),
                (test.data.numpy()[:, None], test.targets.numpy()), [str(c) for c in train.classes])


@attrs.define(kw_only=True)
class MNIST(_IdxDataset):
    """MNIST handwritten digits: 60,000 train and 10,000 test images of 28×28, 10 classes."""

    name: ClassVar[str] = "mnist"
    folder: ClassVar[str] = "MNIST"
    tv_class: ClassVar[str] = "MNIST"


@attrs.define(kw_only=True)
class FashionMNIST(_IdxDataset):
    """Fashion-MNIST: 60,000 train and 10,000 test 28×28 images of clothing, 10 classes."""

    name: ClassVar[str] = "fashion-mnist"
    folder: ClassVar[str] = "FashionMNIST"
    tv_class: ClassVar[str] = "FashionMNIST"


@attrs.define(kw_only=True)
class _CIFAR(TorchvisionDataset):
    """CIFAR in torchvision's layout (``cifar-*-python`` folder or the official archive)."""

    archive: ClassVar[str] = ""

    def _find(self, root: Path) -> Path | None:
        cache = self.cache_path()
        for base in (root, root / self.name.upper(), cache):
            if (base / self.folder).is_dir():
                return base
        for base in (root, root / self.name.upper()):
            if (base / self.archive).is_file():
                from torchvision.datasets.utils import extract_archive

                cache.mkdir(parents=True, exist_ok=True)
                extract_archive(str(base / self.archive), str(cache))
                return cache
        return None

    def _missing_message(self) -> str:
        root = self.root_path()
        return (
            f"{self.name}: neither {self.folder}/ nor {self.archive} under {root}; put the official "
            f"archive or its extracted folder there, set root= or NASCORE_DATA, or set download=true"
        )

    def _raw(self, root: Path):
        train, test = self._tv(root, True), self._tv(root, False)

        def arrays(ds):
            import numpy as np

            return ds.data.transpose(0, 3, 1, 2), np.asarray(ds.targets)

        return arrays(train), arrays(test), list(train.classes)


@attrs.define(kw_only=True)
class CIFAR10(_CIFAR):
    """CIFAR-10: 50,000 train and 10,000 test 32×32 colour images, 10 classes."""

    name: ClassVar[str] = "cifar10"
    folder: ClassVar[str] = "cifar-10-batches-py"
    archive: ClassVar[str] = "cifar-10-python.tar.gz"
    tv_class: ClassVar[str] = "CIFAR10"


@attrs.define(kw_only=True)
class CIFAR100(_CIFAR):
    """CIFAR-100: 50,000 train and 10,000 test 32×32 colour images, 100 classes."""

    name: ClassVar[str] = "cifar100"
    folder: ClassVar[str] = "cifar-100-python"
    archive: ClassVar[str] = "cifar-100-python.tar.gz"
    tv_class: ClassVar[str] = "CIFAR100"


# --------------------------------------------------------------------------- user data


def _required_path(inst, attribute, value):
    if not value:
        raise ValueError(f"{attribute.name} is required")


@attrs.define(kw_only=True)
class ImageFolder(StreamOptions, DatasetOptions):
    """Images in ``root/<class>/<image>`` folders (torchvision's ImageFolder layout),
    split by ``valid_fraction``/``test_fraction``; loaded into memory, or read from the
    files batch by batch when they are large (``stream_above_mb``) or ``stream=true``."""

    name: ClassVar[str] = "imagefolder"
    root: str = param(help="folder with one sub-folder of images per class", validator=_required_path)
    test_fraction: float = param(0.2, help="test share of all images",
                                 validator=[in_range(0.0, 1.0, low_open=True, high_open=True), _check_fractions])
    image_size: int | None = param(None, help="resize every image to this square size (needed when sizes differ)",
                                   validator=in_range(1))
    grayscale: bool = param(False, help="convert images to one channel")
    flatten: bool = param(False, help="give C·H·W features (kind tabular) instead of images")

    def load(self) -> Task:
        import numpy as np

        ds = self._index()
        y = np.asarray(ds.targets)
        idx = self._fractions_split(y)
        shape = self._pixels(ds.loader(ds.samples[0][0])).shape
        meta = self._meta(idx, class_names=list(ds.classes))
        if self.streams(sum(len(v) for v in idx.values()), shape):
            read = _FolderReader(self, [path for path, _ in ds.samples], shape)
            return stream_image_task(self.name, read, idx, {k: y[v] for k, v in idx.items()}, image_shape=shape,
                                     scale=255.0, num_classes=len(ds.classes), flatten=self.flatten,
                                     workers=self.workers, meta=meta)
        X = self._stack(ds)
        return image_task(self.name, _pick(X, y, idx), scale=255.0, num_classes=len(ds.classes),
                          flatten=self.flatten, meta=meta)

    def _read(self):
        import numpy as np

        ds = self._index()
        return self._stack(ds), np.asarray(ds.targets), list(ds.classes)

    def _stack(self, ds):
        import numpy as np

        images = [self._pixels(ds.loader(path)) for path, _ in ds.samples]
        shapes = {im.shape for im in images}
        if len(shapes) > 1:
            raise ConfigError(f"imagefolder: images under {self.root} have {len(shapes)} different sizes; set image_size=")
        return np.stack(images)

    def _index(self):
        """torchvision's ImageFolder index of ``root`` (paths and labels; no pixels read)."""
        from torchvision.datasets import ImageFolder as TVImageFolder

        root = Path(self.root).expanduser()
        if not root.is_dir():
            raise DatasetNotFoundError(
                f"imagefolder: {root} is not a folder; set root= to a folder with one sub-folder of images per class"
            )
        try:
            ds = TVImageFolder(str(root))
        except (FileNotFoundError, RuntimeError) as exc:
            raise DatasetNotFoundError(f"imagefolder: no class folders with images under {root} ({exc})") from None
        return ds

    def _pixels(self, image):
        import numpy as np

        if self.grayscale:
            image = image.convert("L")
        if self.image_size:
            image = image.resize((self.image_size, self.image_size))
        a = np.asarray(image, dtype=np.uint8)
        return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


class _FolderReader:
    """``read(row)`` for a streamed image folder: the uint8 C×H×W pixels of file ``row``
    (picklable, so DataLoader workers can run it)."""

    def __init__(self, folder: ImageFolder, paths: list, shape: tuple):
        self.folder, self.paths, self.shape = folder, paths, tuple(shape)

    def __call__(self, row: int):
        from torchvision.datasets.folder import default_loader

        pixels = self.folder._pixels(default_loader(self.paths[row]))
        if pixels.shape != self.shape:
            raise ConfigError(f"imagefolder: {self.paths[row]} is {pixels.shape[1:]} pixels, others "
                              f"{self.shape[1:]}; set image_size=")
        return pixels


@attrs.define(kw_only=True)
class CSVDataset(DatasetOptions):
    """A CSV file with a header: one target column, the others features (numbers, or
    categories that are one-hot encoded); tabular, standardized on train."""

    name: ClassVar[str] = "csv"
    path: str = param(help="CSV file with a header row", validator=_required_path)
    target: str = param("", help="name of the label column; empty: the last column")
    delimiter: str = param(",", help="field separator")
    test_fraction: float = param(0.2, help="test share of all rows",
                                 validator=[in_range(0.0, 1.0, low_open=True, high_open=True), _check_fractions])

    def load(self) -> Task:
        X, y, classes, features = self._read()
        idx = self._fractions_split(y)
        return tabular_task(self.name, _pick(X, y, idx), num_classes=len(classes),
                            meta=self._meta(idx, class_names=classes, feature_names=features))

    def _read(self):
        import csv

        import numpy as np

        path = Path(self.path).expanduser()
        if not path.is_file():
            raise DatasetNotFoundError(f"csv: no file {path}; set path= to a CSV file with a header row")
        with path.open(newline="") as f:
            rows = list(csv.reader(f, delimiter=self.delimiter))
        header, body = rows[0], [r for r in rows[1:] if r]
        target = self.target or header[-1]
        if target not in header:
            raise ConfigError(f"csv: no column {target!r} in {path}; columns: {', '.join(header)}")
        t = header.index(target)
        classes, y = np.unique(np.array([r[t] for r in body]), return_inverse=True)
        columns, names = [], []
        for j, name in enumerate(header):
            if j != t:
                col, col_names = _encode_column(name, [r[j] for r in body])
                columns.append(col)
                names += col_names
        return np.concatenate(columns, axis=1), y, [str(c) for c in classes], names


def _encode_column(name: str, values: list[str]):
    """A numeric column as is, any other column one-hot encoded (``name=value``)."""
    import numpy as np

    try:
        return np.array(values, dtype=np.float64)[:, None], [name]
    except ValueError:
        cats, codes = np.unique(np.array(values), return_inverse=True)
        return np.eye(len(cats))[codes], [f"{name}={c}" for c in cats]


BUILTIN_DATASETS = (Digits, Iris, Wine, BreastCancer, MNIST, FashionMNIST, CIFAR10, CIFAR100, ImageFolder, CSVDataset)

# --------------------------------------------------------------------------- load_task

_TASKS: OrderedDict[str, Task] = OrderedDict()
_MAX_CACHED = 8


def _spec_key(spec: dict) -> str:
    env = {k: os.environ.get(k) for k in ("NASCORE_DATA", "NASCORE_CACHE")}
    return json.dumps({"spec": spec, "env": env}, sort_keys=True, default=str)


def load_task(spec: dict) -> Task:
    """The Task described by a config table such as ``{"dataset": "mnist", "subset": 2000}``
    (``name`` is accepted for ``dataset``); cached per process, keyed by its canonical JSON.
    The cached Task is shared: treat its tensors as read-only."""
    spec = dict(spec or {})
    name = spec.pop("dataset", None) or spec.pop("name", None)
    if not name:
        raise ConfigError("task needs a dataset, e.g. dataset = \"digits\"")
    key = _spec_key({"dataset": name, **spec})
    task = _TASKS.get(key)
    if task is None:
        from . import create

        task = create("dataset", name, **spec).load()
        _TASKS[key] = task
        while len(_TASKS) > _MAX_CACHED:
            _TASKS.popitem(last=False)
    else:
        _TASKS.move_to_end(key)
    return task


def clear_task_cache() -> None:
    _TASKS.clear()
