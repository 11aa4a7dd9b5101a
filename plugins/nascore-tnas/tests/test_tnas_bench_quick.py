"""The TNAS weight-sharing study's --quick mode runs end to end and writes the study shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "benchmarks"


def test_tnas_oneshot_paired_quick(tmp_path):
    """Two seeds x four arms on a digits subset, and a 4-architecture ranking: every
    comparison pairs the two seeds; Kendall tau lies in [-1, 1] for both samplers."""
    if not (BENCH / "tnas_oneshot_paired.py").is_file():
        pytest.skip("benchmarks/ is not next to this plugin")
    env = {**os.environ, "NASCORE_BENCH_RESULTS": str(tmp_path)}
    subprocess.run([sys.executable, str(BENCH / "tnas_oneshot_paired.py"), "--quick"], check=True, env=env,
                   cwd=BENCH.parent, capture_output=True, timeout=300)
    out = json.loads((tmp_path / "tnas_oneshot_paired_quick.json").read_text())
    assert {"commit", "dirty", "command", "settings", "seeds", "tuned_on"} <= set(out["provenance"])
    assert out["complete"] and len(out["runs"]) == 2 * 4
    assert len(out["comparisons"]) == 4 and all(c["n"] == 2 for c in out["comparisons"])
    assert {c["against"] for c in out["comparisons"]} == {"digits/oneshot_uniform", "digits/gradient_uniform"}
    rank = out["ranking"]["digits"]
    assert len(rank["archs"]) == 4 and len(rank["standalone_valid"]) == 4
    assert all(-1.0 <= t <= 1.0 for t in rank["kendall_tau"].values())
    # NB-201 cells have 6 edges; the conv-edge counts are the archs' own
    assert len(rank["conv_edges"]) == 4 and all(0 <= c <= 6 for c in rank["conv_edges"])
    assert set(rank["kendall_tau_conv_edges"]) == {"standalone", "supernet_tnas", "supernet_uniform"}
