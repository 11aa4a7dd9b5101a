"""benchmarks/nat_paired.py --quick runs end to end and writes the study shape (~5 CPU-s)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "benchmarks"


def test_nat_paired_quick(tmp_path):
    """VGG on a digits subset, 2 seeds: input, NAT and the paper's NAT_VGG, each paired over
    both seeds on test and valid accuracy; costs never rise; a 4-cell ranking."""
    if not (BENCH / "nat_paired.py").is_file():
        pytest.skip("benchmarks/ is not next to this plugin")
    env = {**os.environ, "NASCORE_BENCH_RESULTS": str(tmp_path)}
    subprocess.run([sys.executable, str(BENCH / "nat_paired.py"), "--quick"], check=True, env=env,
                   cwd=BENCH.parent, capture_output=True, timeout=300)
    out = json.loads((tmp_path / "nat_paired_quick.json").read_text())
    assert {"commit", "dirty", "command", "settings", "seeds", "tuned_on"} <= set(out["provenance"])
    assert out["complete"] and set(out["arms"]) == {"digits/VGG/input", "digits/VGG/nat", "digits/VGG/paper_nat"}
    assert len(out["comparisons"]) == 4 and all(c["n"] == 2 for c in out["comparisons"])
    for c in out["comparisons"]:
        assert {"arm", "against", "metric", "n", "diff_mean", "diff_se", "z", "p_value"} <= set(c)
    cell = out["cells"]["digits/VGG"]
    assert cell["never_costlier"] and len(cell["nat_wall_seconds"]) == 2
    # calibrated choice: the output's calibration score is the best, the input's included
    for cands, same in zip(cell["calibration"], cell["equals_input"]):
        assert cands[0]["is_input"]
        assert same == all(c["valid_accuracy"] <= cands[0]["valid_accuracy"] for c in cands[1:])
    rank = cell["ranking"]
    assert rank["n"] == 4 and len(rank["standalone_valid"]) == 4
    assert rank["kendall_tau"] is None or -1.0 <= rank["kendall_tau"] <= 1.0
