"""Shared fixtures: single-threaded math (2 shared cores) and small digits tasks."""

import os

# before the libraries that read them load: scipy and scikit-learn bring their own
# OpenBLAS/OpenMP on first use, after threadpool_limits below has run
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

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
