"""benchmarks/gpu_check.py --quick on the CPU, so the CUDA benchmark never rots: every
measurement runs, the JSON has its shape and provenance, and the trainer and the hand
loop compute the same thing (same accuracy for the same seed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(600)
def test_gpu_check_quick_runs_on_cpu(tmp_path):
    out = tmp_path / "gpu_check_quick.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--quick", "--device", "cpu",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r = json.loads(out.read_text())
    prov = r["provenance"]
    assert prov["commit"] and "gpu_check.py --quick" in prov["command"] and prov["seeds"] == [0]
    assert r["device"] == "cpu" and r["cuda"] is False and r["targets"]["measured_on_cuda"] is False
    assert "no CUDA device" in r["note"] and r["peak_gpu_memory_mb"] is None
    for p in ("fp32", "bf16"):
        t = r["trainer_vs_hand"][p]
        assert t["ratio"] > 0 and t["final_valid_accuracy"]["trainer"] == t["final_valid_accuracy"]["hand"]
    for net in ("lenet5", "quickstart"):
        for v in ("fp32", "bf16", "bf16_channels_last"):
            assert r["epochs"][net][v]["epoch_seconds"] > 0
    assert set(r["supernets"]) == {"darts", "msranas", "nat", "tnas_oneshot"}
    for s in r["supernets"].values():
        assert s["supernet"]["seconds"] > 0 and s["derived"]["epoch_seconds"] > 0 and s["supernet_ratio"] > 0
