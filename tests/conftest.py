"""Shared fixtures: a toy search space and a plugin fixture that cleans up after itself."""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np
import pytest

import nascore
from nascore.arch import Choice, Float, Int, SearchSpace
from nascore.plugins import register_plugin, unregister_plugin

ROOT = Path(__file__).resolve().parents[1]


@attrs.define
class ToySpace(SearchSpace):
    """A chain of up to ``max_layers`` layers: widths are inactive beyond ``depth``."""

    name = "toy"
    max_layers: int = nascore.param(4, help="maximum depth")

    def dimensions(self):
        dims = [Int("depth", 1, self.max_layers), Choice("act", ["relu", "tanh"]), Float("lr", 0.0, 1.0, 0.25)]
        dims += [Int(f"width_{i}", 8, 64, 8) for i in range(self.max_layers)]
        return dims

    def is_active(self, genome, name):
        if name.startswith("width_"):
            return int(name.split("_")[1]) < genome["depth"]
        return True

    def tokens(self, arch):
        g = arch.genome
        return [f"L{g[f'width_{i}']}-{g['act']}" for i in range(g["depth"])]


class ToyPlugin:
    @nascore.hookimpl
    def register_search_spaces(self, register):
        register("toy", ToySpace, description="toy chain space for tests")

    @nascore.hookimpl
    def register_evaluators(self, register):
        from nascore.testing import SyntheticEvaluator

        register("synthetic", SyntheticEvaluator, description="smooth objective of the unit-cube vector")


@pytest.fixture
def toy_plugin():
    register_plugin(ToyPlugin(), name="toy-plugin")
    yield
    unregister_plugin("toy-plugin")


@pytest.fixture
def toy_space():
    return ToySpace()


@pytest.fixture
def rng():
    return np.random.default_rng(0)
