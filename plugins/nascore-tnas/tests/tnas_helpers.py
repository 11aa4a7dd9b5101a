"""Helpers of the nascore-tnas tests: tiny all-Choice spaces, a continuous space and the
data-root helper.  A module with a name unique across every test suite (not conftest.py,
which pytest does not mean to be imported), so all suites collect in one process."""

from __future__ import annotations

import os
from pathlib import Path

import attrs
import pytest

from nascore.arch import Choice, Float, SearchSpace

REPO = Path(__file__).resolve().parents[3]


def data_path(relative: str) -> Path:
    """Path under NASCORE_DATA; skip when absent unless NASCORE_REQUIRE_DATA=1."""
    root = Path(os.environ.get("NASCORE_DATA", REPO.parent / "shared" / "data"))
    path = root / relative
    if not path.exists():
        if os.environ.get("NASCORE_REQUIRE_DATA") == "1":
            pytest.fail(f"{path} is missing and NASCORE_REQUIRE_DATA=1")
        pytest.skip(f"{path} is missing (set NASCORE_DATA)")
    return path


@attrs.define
class TinySpace(SearchSpace):
    """``length`` positions over ``tokens``; position 0 may not take the last token, so
    the mask is not all true."""

    name = "tiny"
    length: int = 4
    tokens_: tuple = ("a", "b", "c")

    def dimensions(self):
        dims = [Choice("p0", self.tokens_[:-1])]
        return dims + [Choice(f"p{i}", self.tokens_) for i in range(1, self.length)]


@attrs.define
class PairSpace(SearchSpace):
    """Two positions that must differ (a cross-dimension rule a mask cannot express)."""

    name = "pair"

    def dimensions(self):
        return [Choice("x", (0, 1, 2)), Choice("y", (0, 1, 2))]

    def check(self, genome):
        return "x and y must differ" if genome["x"] == genome["y"] else None


@attrs.define
class MixedSpace(SearchSpace):
    """A space with a continuous dimension (not a token sequence)."""

    name = "mixed"

    def dimensions(self):
        return [Choice("op", ("a", "b")), Float("lr", 0.0, 1.0)]
