"""Behaviour lock: the examples give the same evaluations, in the same order, for the same seed.

The recorded run keys in ``tests/data/behaviour_lock.json`` were produced before the
contracts refactor (issue 14), from commit 2aaca9d, with ``python
tests/test_behaviour_lock.py --record``; any change to the order of evaluations, the RNG
streams or the accepted results shows up here.
Budgets are tiny so the whole file takes a few seconds (the tabular runs need no training).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import nascore
from nascore import config as cfg
from nascore.testing import require_data

ROOT = Path(__file__).resolve().parents[1]
RECORD = Path(__file__).with_name("data") / "behaviour_lock.json"


def _tabular_re() -> dict:
    """Regularized evolution over the NB-201 table, driven by the uniform sampler."""
    config = cfg.load(ROOT / "examples" / "tnas_nb201.toml")
    config.update(name="re-nb201", budget=60)
    config["sampler"] = {"name": "random"}
    config["optimizer"] = {"name": "regularized-evolution", "population": 10, "sample_size": 3, "batch_size": 2}
    return config


CASES = {
    # the TNAS sampler (VAE rounds every 10 results) with random search, 30 table queries
    "tnas_nb201": lambda: (ROOT / "examples" / "tnas_nb201.toml", ["budget=30"]),
    "re_nb201": lambda: (_tabular_re(), None),
    # the quickstart trained on digits: 6 candidates, 1 epoch each, on its process pool
    # (workers rebuild the components from their config tables)
    "quickstart": lambda: (ROOT / "examples" / "quickstart.toml",
                           ["budget=6", "evaluator.epochs=1", "optimizer.population=4"]),
}


def run_keys(name: str) -> dict:
    config, sets = CASES[name]()
    result = nascore.run(config, sets=sets, write_files=False)
    return {"keys": [e["key"] for e in result["evaluations"]], "best": result["best"]["key"]}


@pytest.mark.parametrize("name", sorted(CASES))
def test_run_keys_match_the_recorded_ones(name):
    require_data("nb201/nb201.csv")
    recorded = json.loads(RECORD.read_text())[name]
    got = run_keys(name)
    assert len(got["keys"]) == len(recorded["keys"])
    assert got["keys"] == recorded["keys"]
    assert got["best"] == recorded["best"]


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    RECORD.parent.mkdir(exist_ok=True)
    RECORD.write_text(json.dumps({name: run_keys(name) for name in sorted(CASES)}, indent=1) + "\n")
