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


def _quick(tmp_path, *args) -> dict:
    if not (BENCH / "nat_paired.py").is_file():
        pytest.skip("benchmarks/ is not next to this plugin")
    env = {**os.environ, "NASCORE_BENCH_RESULTS": str(tmp_path)}
    subprocess.run([sys.executable, str(BENCH / "nat_paired.py"), "--quick", *args], check=True, env=env,
                   cwd=BENCH.parent, capture_output=True, timeout=300)
    name = "nat_paired_dev_quick.json" if "--dev" in args else "nat_paired_cost_quick.json"
    return json.loads((tmp_path / name).read_text())


def test_nat_paired_dev_quick(tmp_path):
    """--dev: every calibration variant scored on the same NAT run; the pick is the best mean."""
    out = _quick(tmp_path, "--dev")
    assert out["provenance"]["seeds"] == [100] and "development seeds" in out["provenance"]["tuned_on"]
    variants = out["variants"]
    assert set(variants) == {"scratch1", "inherit1+1"}
    for v in variants.values():
        runs = [r for cell in v["cells"].values() for r in cell]
        assert v["mean_valid_diff"] == pytest.approx(sum(r["valid_diff"] for r in runs) / len(runs))
        for r in runs:  # an unchanged cell is the input: the same network, a zero difference
            assert (r["changed_edges"] == 0) == r["equals_input"]
            if r["equals_input"]:
                assert r["valid_diff"] == 0.0
            assert r["calibration"][0]["is_input"]
    assert out["best_on_validation"] == max(variants, key=lambda n: variants[n]["mean_valid_diff"])


def test_nat_paired_cost_quick(tmp_path):
    """--cost: the unit's extrapolation is the stated sum of its measured epochs."""
    out = _quick(tmp_path, "--cost")
    s = out["provenance"]["settings"]
    d = out["datasets"]["digits"]
    assert d["train_epoch_seconds"] > 0 and d["nat_epoch_seconds"] > 0
    calib = (s["nat"]["calibrate_top"] + 1) * s["nat"]["calibrate_epochs"]
    unit = ((s["nat"]["epochs"] + s["nat"]["warmup_epochs"]) * d["nat_epoch_seconds"]
            + (calib + 3 * s["train"]["epochs"]) * d["train_epoch_seconds"])
    assert d["unit_seconds"] == pytest.approx(unit)
    rank = (s["ranking"]["transitions"] + 1) * len(s["ranking"]["seeds"]) * s["train"]["epochs"]
    assert d["ranking_seconds_per_cell"] == pytest.approx(rank * d["train_epoch_seconds"])
    assert d["study_cpu_hours"] == pytest.approx((d["units"] * unit + rank * d["train_epoch_seconds"]) / 3600)


def test_nat_paired_merge(tmp_path):
    """--merge: two processes' checkpoints (disjoint cells) become one state; a unit both
    hold must agree (trained networks may differ only in their timing, the first is kept)."""
    if not (BENCH / "nat_paired.py").is_file():
        pytest.skip("benchmarks/ is not next to this plugin")
    import importlib.util

    spec = importlib.util.spec_from_file_location("nat_paired_bench", BENCH / "nat_paired.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    shape = {"mnist": {"input_shape": [1, 14, 14], "num_classes": 10}}
    a = {"nat": {"mnist|VGG|0": {"equals_input": True}}, "trained": {"mnist|0|x": {"seconds": 1.0}},
         "ranking": {}, "shape": shape}
    b = {"nat": {"mnist|ENAS|0": {"equals_input": False}}, "trained": {"mnist|0|x": {"seconds": 2.0},
                                                                       "mnist|0|y": {"seconds": 3.0}},
         "ranking": {}, "shape": shape}
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    state = mod.merge_checkpoints([tmp_path / "a.json", tmp_path / "b.json"])
    assert set(state["nat"]) == {"mnist|VGG|0", "mnist|ENAS|0"}
    assert state["trained"] == {"mnist|0|x": {"seconds": 1.0}, "mnist|0|y": {"seconds": 3.0}}
    assert state["shape"] == shape
    b["nat"]["mnist|VGG|0"] = {"equals_input": False}
    (tmp_path / "b.json").write_text(json.dumps(b))
    with pytest.raises(ValueError, match="disagree"):
        mod.merge_checkpoints([tmp_path / "a.json", tmp_path / "b.json"])
    with pytest.raises(FileNotFoundError):
        mod.merge_checkpoints([tmp_path / "missing.json"])
