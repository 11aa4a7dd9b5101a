"""Fixtures of the nascore-tnas tests (the helper spaces live in ``tnas_helpers.py``)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
