"""Shared fixtures: single-threaded math (2 shared cores) and small digits tasks."""

import os

import pytest
import torch
from threadpoolctl import threadpool_limits

torch.set_num_threads(1)
threadpool_limits(1)


@pytest.fixture(scope="session")
def digits_tabular():
    """scikit-learn digits as 64 standardized features (STEERAGE's FFNN view)."""
    from nascore.data import load_task

    return load_task({"dataset": "digits", "flatten": True, "seed": 0})


@pytest.fixture(scope="session")
def digits_images():
    """scikit-learn digits as 1x8x8 images."""
    from nascore.data import load_task

    return load_task({"dataset": "digits", "seed": 0})


@pytest.fixture(scope="session")
def mnist_root():
    """The MNIST raw files under NASCORE_DATA; skipped when absent unless required."""
    from nascore.data import data_root

    root = data_root()
    if not (root / "MNIST" / "raw").is_dir():
        if os.environ.get("NASCORE_REQUIRE_DATA") == "1":
            pytest.fail(f"MNIST not found under {root} and NASCORE_REQUIRE_DATA=1")
        pytest.skip(f"MNIST not found under {root} (set NASCORE_DATA)")
    return root


@pytest.fixture(scope="session")
def nb201_table():
    """The NAS-Bench-201 table under NASCORE_DATA; skipped when absent unless required."""
    from nascore.testing import require_data

    return require_data("nb201/nb201.csv")
