"""A real two-node Ray cluster on this machine: a search against it survives the loss of
a node mid-run, through Ray's task retries (issue 16)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the ray extra is not installed")

RAY = Path(sys.executable).with_name("ray")
CONFIG = """
name = "ray-cluster"
seed = 1
budget = 6
[task]
dataset = "digits"
subset = 300
eval_subset = 100
[space]
name = "nb201"
C = 4
N = 1
[optimizer]
name = "random-search"
[evaluator]
name = "train"
epochs = 2
measure_latency = false
[executor]
name = "ray"
workers = 3
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _procs() -> list[tuple[int, int, int, str]]:
    """(pid, ppid, session id, command line) of every process we can read."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        out.append((int(entry.name), int(fields[1]), int(fields[3]), cmd))
    return out


def _kill(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class _Cluster:
    """Head and second node started with ``ray start``, each in its own session, so that
    teardown ends exactly the processes they started (``ray stop`` would end every Ray
    instance on the machine, other users' included)."""

    def __init__(self, tmp: Path):
        self.port, self.node_port = _free_port(), _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
        self.sessions: list[int] = []
        self.tmp = tmp

    def start(self, *args: str, name: str) -> None:
        log = (self.tmp / f"{name}.log").open("w")
        proc = subprocess.Popen([str(RAY), "start", "--node-ip-address=127.0.0.1", "--disable-usage-stats", *args],
                                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.sessions.append(proc.pid)
        if proc.wait(timeout=90) != 0:
            raise RuntimeError(f"ray start ({name}) failed: {(self.tmp / f'{name}.log').read_text()[-2000:]}")

    def second_node(self) -> list[int]:
        """Pids of the second node: its raylet and everything under it."""
        procs = _procs()
        raylets = [p for p, _, _, cmd in procs if "raylet" in cmd and f"--node_manager_port={self.node_port}" in cmd]
        tree, frontier = set(raylets), set(raylets)
        while frontier:
            frontier = {p for p, pp, _, _ in procs if pp in frontier} - tree
            tree |= frontier
        return sorted(tree)

    def second_node_busy(self) -> bool:
        """Whether a worker of the second node is running an evaluation."""
        node = set(self.second_node())
        return any(p in node and "_ray_job" in cmd for p, _, _, cmd in _procs())

    def stop(self) -> None:
        _kill([p for p, _, sid, _ in _procs() if sid in self.sessions and p != os.getpid()])
        # ``ray start --head`` records its address for ``ray.init()`` without one to join;
        # ``ray stop`` would delete the record, so do it here: a stale one breaks later inits
        record = Path("/tmp/ray/ray_current_cluster")
        with contextlib.suppress(OSError):  # no record (or already gone): nothing to remove
            if record.read_text().strip().endswith(f":{self.port}"):
                record.unlink()


@pytest.fixture
def cluster(tmp_path):
    c = _Cluster(tmp_path)
    try:
        c.start("--head", f"--port={c.port}", "--num-cpus=1", "--include-dashboard=false", name="head")
        c.start(f"--address={c.address}", "--num-cpus=2", f"--node-manager-port={c.node_port}", name="node")
        yield c
    finally:
        c.stop()


@pytest.mark.timeout(240)
def test_search_on_two_nodes_survives_a_node_killed_mid_run(cluster, tmp_path):
    config = tmp_path / "ray.toml"
    config.write_text(CONFIG)
    out = tmp_path / "run"
    env = {**cluster.env, "NASCORE_DATA": os.environ.get("NASCORE_DATA", "")}
    driver = subprocess.Popen(
        [sys.executable, "-m", "nascore.cli", "run", str(config), "--out", str(out), "--json",
         "--set", f"executor.address={cluster.address!r}".replace("'", '"')],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.time() + 120
        while not cluster.second_node_busy():
            assert driver.poll() is None, driver.communicate()[1][-3000:]
            assert time.time() < deadline, "no evaluation ever ran on the second node"
            time.sleep(0.2)
        victims = cluster.second_node()
        _kill(victims)
        stdout, stderr = driver.communicate(timeout=150)
    finally:
        if driver.poll() is None:
            _kill([driver.pid])
    assert driver.returncode == 0, stderr[-3000:]
    # Ray prints its retry notices ("Task _ray_job failed ... will be retried") on stdout
    summary = json.loads(stdout[stdout.index("\n{\n") + 1:] if not stdout.startswith("{") else stdout)
    assert summary["counts"] == {"ok": 6, "failed": 0, "stopped": 0}
    result = json.loads((out / "result.json").read_text())
    assert all(e["status"] == "ok" for e in result["evaluations"])
    assert not any(pid for pid in victims if Path(f"/proc/{pid}").exists()
                   and "(Z)" not in Path(f"/proc/{pid}/stat").read_text()[:64]), "the second node is still alive"
