"""Fixtures of the nascore-ngram-srm tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Train with one intra-op thread: the test machines are small and shared, and
    oversubscribed torch threads make tiny networks orders of magnitude slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
