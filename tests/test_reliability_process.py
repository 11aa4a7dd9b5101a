"""Process-pool runs: workers never outlive their driver, and a worker killed mid-run costs
nothing but a rerun (issue 16).  Real ``nascore run`` processes, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

CONFIG = """
name = "proc"
seed = 4
budget = {budget}
[task]
dataset = "digits"
subset = 400
eval_subset = 100
[space]
name = "nb201"
C = 4
N = 1
[optimizer]
name = "random-search"
batch_size = {budget}
[evaluator]
name = "train"
epochs = {epochs}
measure_latency = false
[executor]
name = "process"
workers = 2
threads = 1
"""


def _state(pid: int) -> str | None:
    """The process state letter (R, S, Z, ...), or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2]


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _workers(driver: int) -> list[int]:
    """The driver's spawned pool workers (not the resource tracker)."""
    found = []
    for pid in _children(driver):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmd:
            found.append(pid)
    return found


def _start(tmp_path: Path, budget: int, epochs: int) -> tuple[subprocess.Popen, Path]:
    config = tmp_path / "proc.toml"
    config.write_text(CONFIG.format(budget=budget, epochs=epochs))
    out = tmp_path / "run"
    driver = subprocess.Popen([sys.executable, "-m", "nascore.cli", "run", str(config), "--out", str(out),
                               "--quiet", "--no-report"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return driver, out


def _wait_for_busy_workers(driver: subprocess.Popen, n: int, timeout: float = 90) -> list[int]:
    """Pids of ``n`` workers once each is running (their torch import and first job)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert driver.poll() is None, driver.communicate()[1][-2000:]
        workers = _workers(driver.pid)
        if len(workers) >= n and all(_state(p) == "R" for p in workers[:n]):
            return workers
        time.sleep(0.1)
    raise AssertionError("the pool's workers never got busy")


@pytest.mark.timeout(240)
def test_killing_the_driver_leaves_no_worker_alive_5s_later(tmp_path):
    driver, _ = _start(tmp_path, budget=8, epochs=200)
    try:
        workers = _wait_for_busy_workers(driver, 2)
        others = [p for p in _children(driver.pid) if p not in workers]  # the resource tracker
        driver.send_signal(signal.SIGKILL)
        driver.wait(10)
        time.sleep(5)
        alive = {p: _state(p) for p in workers + others if _state(p) not in (None, "Z")}
        assert not alive, f"outlived their driver: {alive}"
    finally:
        for pid in _workers(driver.pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.timeout(240)
def test_a_worker_killed_mid_run_costs_a_rerun_and_every_candidate_ends_ok(tmp_path):
    driver, out = _start(tmp_path, budget=4, epochs=3)
    try:
        victim = _wait_for_busy_workers(driver, 1)[0]
        os.kill(victim, signal.SIGKILL)
        stdout, stderr = driver.communicate(timeout=200)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    assert result["counts"] == {"ok": 4, "failed": 0, "stopped": 0}
    workers = {e["worker"] for e in result["evaluations"]}
    assert not any(w.endswith(f":{victim}") for w in workers)  # the killed worker finished nothing
