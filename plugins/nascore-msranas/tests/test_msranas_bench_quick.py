"""The MS-RANAS benchmarks' --quick modes run end to end and write the study shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "benchmarks"


def _quick(script: str, tmp_path: Path) -> dict:
    if not (BENCH / f"{script}.py").is_file():
        pytest.skip("benchmarks/ is not next to this plugin")
    env = {**os.environ, "NASCORE_BENCH_RESULTS": str(tmp_path)}
    subprocess.run([sys.executable, str(BENCH / f"{script}.py"), "--quick"], check=True, env=env,
                   cwd=BENCH.parent, capture_output=True, timeout=300)
    return json.loads((tmp_path / f"{script}_quick.json").read_text())


def test_msranas_paired_quick(tmp_path):
    """Two search seeds x (searched + 2 random cells) x 1 training seed: both metrics are
    compared per search seed; each search records alpha's movement under the steps rule
    (lr = 3e-4 x 19550 / steps) and the cell's stability."""
    out = _quick("msranas_paired", tmp_path)
    prov = out["provenance"]
    assert {"commit", "dirty", "command", "settings", "seeds", "tuned_on"} <= set(prov)
    assert out["complete"] and out["units_trained"] == 2 * 3
    comps = [c for c in out["comparisons"] if c["unit"].startswith("search seed")]
    assert {c["metric"] for c in comps} == {"area", "last"} and all(c["n"] == 2 for c in comps)
    for name in ("searched_area", "random_area", "searched_last", "random_last"):
        arm = out["arms"][name]
        assert arm["n"] == 2 and 0.0 <= arm["mean"] <= 100.0
    # an exit's MFLOPs are cumulative (it is charged for everything it depends on): they rise
    # exit by exit; the last exit's accuracy is the "last" metric's unit value
    for s, cells in out["per_cell"].items():
        assert set(cells) == {"searched", "random0", "random1"}
        for name, cell in cells.items():
            assert all(a < b for a, b in zip(cell["exit_mflops"], cell["exit_mflops"][1:]))
            assert cell["exit_accuracy"][-1] == pytest.approx(out["per_search_seed"][s]["last"]["searched"][0]
                                                            if name == "searched" else
                                                            out["per_search_seed"][s]["last"]["random"][0][int(name[-1])])
    for s in out["searches"].values():
        assert s["alpha_lr"] == pytest.approx(3e-4 * 19550 / s["arch_steps"])
        assert s["alpha_movement"][-1]["max_abs_dev"] > 0.05
        assert s["cell_stability"]["transitions"] == 1


def test_msranas_search_cost_quick(tmp_path):
    out = _quick("msranas_search_cost", tmp_path)
    r = out["results"]["digits"]
    ratio = r["ratio"]["derived_same_size"]
    assert ratio["n"] == len(r["epochs"]) == 2 and ratio["se"] is not None and ratio["mean"] > 0
    assert r["verdict"] in {"meets", "misses", "within noise"}
    assert r["ratio_wall"]["n"] == 2 and r["search_epoch_cpu_seconds"]["mean"] > 0
    prof = r["profile"]
    # the arch step is one of the epoch's two steps per batch pair; every supernet edge runs all ops
    assert 0.0 < prof["arch_step_share"]["mean"] < 1.0
    assert prof["convs_per_forward"]["supernet"] > prof["convs_per_forward"]["derived_same_size"] > 0
