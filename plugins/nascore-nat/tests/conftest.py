import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def digits():
    from nascore.data import load_task

    return load_task({"dataset": "digits", "seed": 0})


@pytest.fixture(scope="session")
def small_digits():
    from nascore.data import load_task

    return load_task({"dataset": "digits", "seed": 0, "subset": 300, "eval_subset": 150})
