"""Benchmarks regenerate: every committed result names its provenance, and the cheapest
quick modes rerun from the code equal their committed ``*_quick.json`` (the cheap part of
``make bench-check``; the whole of it is ``make bench-check``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_check  # noqa: E402


def test_compare_tolerances():
    spec = {"ignore": ["*seconds*", "provenance.commit"], "atol": 0.0, "rtol": 1e-9, "bands": {"acc.*": 0.5}}
    old = {"provenance": {"commit": "a", "seeds": [1, 2]}, "acc": [90.0, 91.0], "n": 3, "wall_seconds": 1.0,
           "exact": 0.25, "name": "x"}
    same = json.loads(json.dumps(old))
    same.update(wall_seconds=99.0, acc=[90.4, 90.6])
    same["provenance"]["commit"] = "b"
    assert bench_check.compare(old, same, spec) == []
    bad = json.loads(json.dumps(same))
    bad.update(acc=[90.6, 91.0], exact=0.25 + 1e-6, n=4, name="y")
    bad["provenance"]["seeds"] = [1, 3]
    diffs = bench_check.compare(old, bad, spec)
    assert len(diffs) == 5, diffs
    assert any(d.startswith("acc.0:") for d in diffs) and any(d.startswith("provenance.seeds.1:") for d in diffs)
    assert bench_check.compare({"a": [1, 2]}, {"a": [1]}, spec) == ["a: length 2 committed, 1 rerun"]
    assert bench_check.compare({"a": 1}, {"b": 1}, spec) == ["a: missing from the rerun",
                                                             "b: new in the rerun (not in the committed file)"]


def test_check_spec_reads_the_script_literal():
    spec = bench_check.check_spec("quickstart")
    assert spec["bands"]["summary.*accuracy"] == 2.0
    assert "provenance.commit" in spec["ignore"] and "summary.wall seconds" in spec["ignore"]


def _known_commits() -> set[str] | None:
    res = subprocess.run(["git", "rev-list", "--all"], cwd=ROOT, capture_output=True, text=True)
    return set(res.stdout.split()) if res.returncode == 0 else None


@pytest.mark.parametrize("path", sorted((BENCH / "results").glob("*.json")), ids=lambda p: p.name)
def test_every_result_has_provenance(path):
    data = json.loads(path.read_text())
    prov = data.get("provenance")
    assert isinstance(prov, dict), f"{path.name}: no provenance"
    for key in ("commit", "dirty", "command", "settings", "seeds", "tuned_on"):
        assert key in prov, f"{path.name}: provenance lacks {key}"
    assert prov["command"] and isinstance(prov["settings"], dict)
    # every file is regenerated from the code at its commit: none is backfilled any more
    assert not prov.get("backfilled"), f"{path.name}: provenance backfilled, not regenerated"
    commits = _known_commits()
    if commits is not None:
        assert prov["commit"] in commits, f"{path.name}: commit {prov['commit']} is not in this history"
    for c in data.get("comparisons") or []:
        assert {"arm", "against", "metric", "n", "diff_mean", "diff_se", "z", "p_value"} <= set(c), path.name


@pytest.mark.parametrize("script", bench_check.CHEAP)
def test_cheap_quick_modes_regenerate(script, tmp_path):
    """Measured (bench_check.py, /usr/bin/time): tnas_nb201 9 CPU-s, ngram_srm_speed + ngram_srm_tables
    13 CPU-s, ngram_srm_acceleration about 20 CPU-s: well under a minute of CPU together."""
    if not (BENCH / "results" / f"{script}_quick.json").is_file():
        pytest.skip(f"no committed {script}_quick.json")
    r = bench_check.check(script, tmp_path, timeout=600)
    assert r["status"] == "ok", "\n".join([r["status"], *r["differences"][:20]])


def test_render_verdict_follows_the_metric_direction():
    import render

    def verdict(metric, z, n=30, **extra):
        return render._verdict({"metric": metric, "z": z, "n": n, **extra}, min_n=30)

    assert verdict("valid_accuracy", 2.0) == "beats" and verdict("valid_accuracy", -2.0) == "loses"
    assert verdict("valid_accuracy", 1.99) == "tie" and verdict("valid_accuracy", 5.0, n=29) == "tie (n < 30)"
    # fewer epochs trained, fewer parameters: a negative z is the arm's win
    assert verdict("epochs_ratio", -4.7) == "beats (lower is better)"
    assert verdict("params", 3.0) == "loses (lower is better)" and verdict("params", -1.9) == "tie"
    assert verdict("custom_cost", -2.5, lower_is_better=True) == "beats (lower is better)"



def test_write_result_records_the_checkout_as_it_was_at_start(tmp_path, monkeypatch):
    """A run's provenance is the code that ran: the commit and dirty files when the script
    started, whatever the checkout is when it writes (its own tracked output rewritten after
    each unit, or someone else's commit meanwhile, kept as ``commit_at_end``)."""
    import _common
    import nascore.evidence

    start = {"commit": "a" * 40, "dirty": False, "dirty_files": []}
    now = {"commit": "a" * 40, "dirty": True, "dirty_files": ["benchmarks/results/r.json"]}

    def provenance_now(command, **kw):
        return {**now, "command": command, **kw}

    monkeypatch.setattr(_common, "_START", start)
    monkeypatch.setattr(nascore.evidence, "provenance", provenance_now)
    out = tmp_path / "r.json"
    _common.write_result("r", {"value": 1}, quick=True, settings={"a": 1}, seeds=[0], path=out)
    data = json.loads(out.read_text())
    prov = data["provenance"]
    assert (prov["commit"], prov["dirty"], prov["dirty_files"]) == ("a" * 40, False, [])
    assert "commit_at_end" not in prov and data["value"] == 1 and prov["seeds"] == [0]
    now["commit"] = "b" * 40  # a commit landed while it ran
    _common.write_result("r", {"value": 2}, quick=True, settings={"a": 1}, seeds=[0], path=out)
    prov = json.loads(out.read_text())["provenance"]
    assert (prov["commit"], prov["dirty"], prov["commit_at_end"]) == ("a" * 40, False, "b" * 40)


def test_run_overhead_reference_mode_swaps_and_restores_the_refits():
    """run_overhead's `reference` mode times the refits as they were before issue 20 by
    swapping two plugin internals; it must find them (it broke once when one changed
    shape) and put them back."""
    pytest.importorskip("nascore_steerage")
    pytest.importorskip("nascore_tnas")
    import nascore_steerage.predictor as bt
    import nascore_tnas.distribution as dist
    import run_overhead

    import torch

    before = (bt.BoostedTreesPredictor._boost, dist._one_thread)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with run_overhead.reference_refits():
            assert bt.BoostedTreesPredictor._boost is not before[0] and dist._one_thread is not before[1]
            with dist._one_thread(True):  # the reference keeps torch's thread count
                assert torch.get_num_threads() == 2
        with dist._one_thread(True):  # restored: the lean guard drops to one thread
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    assert (bt.BoostedTreesPredictor._boost, dist._one_thread) == before


def test_run_all_runs_the_extra_invocations_after_the_plain_run(monkeypatch, tmp_path):
    """make bench: nat_paired runs plain (digits) and then --mnist; --quick runs each script once."""
    import run_all

    calls = []

    def fake_run(cmd, **kwargs):
        calls.append([Path(cmd[1]).name] + cmd[2:])
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(run_all.subprocess, "run", fake_run)
    monkeypatch.setattr("render.render", lambda results, out: tmp_path / "benchmarks.md")
    assert run_all.main(["--only", "nat_paired", "trainer_overhead"]) == 0
    assert calls == [["nat_paired.py"], ["nat_paired.py", "--mnist"], ["trainer_overhead.py"]]
    calls.clear()
    assert run_all.main(["--quick", "--only", "nat_paired"]) == 0
    assert calls == [["nat_paired.py", "--quick"]]
