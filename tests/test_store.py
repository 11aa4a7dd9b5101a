"""The SQLite run store: round trip, WAL, locking, SIGKILL durability, events."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from nascore.errors import RunLockedError, RunStoreError
from nascore.results import Evaluation
from nascore.store import RunStore


def _evaluation(i: int, status: str = "ok", **kw) -> Evaluation:
    return Evaluation(
        key=f"k{i:04d}", space="chain", genome={"layers": i % 5, "width": [8, 16][i % 2]},
        status=status, metrics={"valid_accuracy": 50.0 + i, "params": 1000 * i},
        curve=[{"epoch": e + 1, "valid_accuracy": 40.0 + e} for e in range(3)],
        worker=f"host:{100 + i}", started=1000.0 + i, finished=1001.5 + i, **kw,
    )


def _run_python(code: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=60, **kw)


def test_round_trip_keeps_every_field_and_completion_order(tmp_path):
    stored = [_evaluation(i) for i in (3, 1, 2)]
    with RunStore(tmp_path / "run") as store:
        indices = [store.add(e) for e in stored]
        indices.append(store.add(_evaluation(7, status="failed", error="DivergedError: loss is nan")))
        assert indices == [0, 1, 2, 3]
        for e, i in zip(stored, indices):
            e.index = i
        assert len(store) == 4 and "k0001" in store and "nope" not in store
    with RunStore(tmp_path / "run", create=False) as store:
        got = store.evaluations()
        assert [e.key for e in got] == ["k0003", "k0001", "k0002", "k0007"]
        assert got[:3] == stored
        assert store.get("k0002") == stored[2]
        assert store.get("missing") is None
        f = store.get("k0007")
        assert (f.status, f.error, f.ok) == ("failed", "DivergedError: loss is nan", False)
        assert store.keys() == {"k0001", "k0002", "k0003", "k0007"}


def test_non_finite_metrics_are_stored_as_null_and_bad_rows_refused(tmp_path):
    with RunStore(tmp_path) as store:
        e = _evaluation(1)
        e.metrics["valid_accuracy"] = math.nan
        assert store.add(e) == 0
        assert store.get(e.key).metrics["valid_accuracy"] is None
        with pytest.raises(RunStoreError, match="already"):
            store.add(_evaluation(1))
        with pytest.raises(RunStoreError, match="status"):
            store.add(_evaluation(2, status="done"))
        assert len(store) == 1


def test_meta_defaults_and_values(tmp_path):
    import nascore

    config = {"seed": 3, "space": {"name": "chain"}, "optimizer": {"name": "random", "budget": 8}}
    with RunStore(tmp_path) as store:
        store.set_meta("config", config)
        store.set_meta("seed", 3)
        store.set_meta("seed", 4)
        assert store.get_meta("nascore_version") == nascore.__version__
        assert isinstance(store.get_meta("created"), float)
        assert store.get_meta("absent", "dflt") == "dflt"
    with RunStore(tmp_path, readonly=True) as store:
        assert store.get_meta("config") == config
        assert store.get_meta("seed") == 4
        assert {"config", "seed", "created", "nascore_version"} <= set(store.meta())


def test_wal_mode_and_full_sync(tmp_path):
    with RunStore(tmp_path) as store:
        store.add(_evaluation(0))
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert (tmp_path / "run.sqlite-wal").exists()
        other = sqlite3.connect(tmp_path / "run.sqlite")
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert other.execute("SELECT count(*) FROM evaluations").fetchone()[0] == 1
        other.close()


def test_second_store_in_same_process_is_refused(tmp_path):
    store = RunStore(tmp_path)
    with pytest.raises(RunLockedError, match=rf"in use by process {os.getpid()}\b"):
        RunStore(tmp_path)
    store.close()
    RunStore(tmp_path).close()  # released on close


def test_second_process_is_refused_with_the_holder_pid(tmp_path):
    code = f"""
        import sys
        from nascore.errors import RunLockedError
        from nascore.store import RunStore
        try:
            RunStore({str(tmp_path)!r})
        except RunLockedError as exc:
            print(exc); sys.exit(3)
        print("opened")
    """
    with RunStore(tmp_path):
        proc = _run_python(code)
        assert proc.returncode == 3, proc.stderr
        assert f"in use by process {os.getpid()}" in proc.stdout
    assert _run_python(code).stdout.strip() == "opened"


def test_readonly_reads_while_a_writer_holds_the_run(tmp_path):
    with pytest.raises(RunStoreError, match="no run store"):
        RunStore(tmp_path / "absent", readonly=True)
    with pytest.raises(RunStoreError, match="no run store"):
        RunStore(tmp_path / "absent", create=False)
    with RunStore(tmp_path) as writer:
        writer.add(_evaluation(0))
        with RunStore(tmp_path, readonly=True) as reader:
            writer.add(_evaluation(1))
            assert [e.key for e in reader.evaluations()] == ["k0000", "k0001"]
            with pytest.raises(RunStoreError, match="read-only"):
                reader.add(_evaluation(2))


def test_events_round_trip_in_order_and_by_kind(tmp_path):
    with RunStore(tmp_path) as store:
        store.event("log", message="batch 1", n=4)
        store.event("figure", path="pareto.png", title="Pareto front")
        store.event("log", message="batch 2", n=4)
        with pytest.raises(RunStoreError, match="JSON"):
            store.event("log", obj=object())
    with RunStore(tmp_path, readonly=True) as store:
        events = store.events()
        assert [e.kind for e in events] == ["log", "figure", "log"]
        assert [e.data["message"] for e in store.events("log")] == ["batch 1", "batch 2"]
        assert store.events("figure")[0].data == {"path": "pareto.png", "title": "Pareto front"}
        assert events[0].time <= events[1].time <= events[2].time


_WRITER = """
    import sys
    from nascore.results import Evaluation
    from nascore.store import RunStore
    store = RunStore(sys.argv[1])
    i = 0
    while True:
        store.add(Evaluation(key=f"k{i}", space="s", genome={"i": i}, status="ok",
                             metrics={"valid_accuracy": float(i)}, curve=[{"epoch": 1}] * 20))
        store.event("log", i=i)
        print(i, flush=True)
        i += 1
"""


def _sigkilled_writer(writer: str, tmp_path, lines: int) -> list[int]:
    """Run ``writer`` on ``tmp_path``, SIGKILL it after it has printed ``lines`` numbers
    (each printed once its rows are committed), and return those numbers."""
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(writer), str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    try:
        reported = [int(proc.stdout.readline()) for _ in range(lines)]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return reported


def test_sigkill_loses_no_committed_row(tmp_path):
    reported = _sigkilled_writer(_WRITER, tmp_path, 40)
    assert reported == list(range(40))
    with RunStore(tmp_path) as store:  # the dead process's lock does not block
        assert store._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        evaluations = store.evaluations()
        n = len(evaluations)
        assert n >= 40  # every add() that returned is there; one more may have committed
        assert [e.key for e in evaluations] == [f"k{i}" for i in range(n)]
        assert [e.index for e in evaluations] == list(range(n))
        assert evaluations[-1].metrics == {"valid_accuracy": float(n - 1)}
        store.add(_evaluation(9999))
        assert len(store) == n + 1


def _visible(tmp_path) -> int:
    other = sqlite3.connect(f"file:{tmp_path / 'run.sqlite'}?mode=ro", uri=True)
    try:
        return other.execute("SELECT count(*) FROM evaluations").fetchone()[0]
    finally:
        other.close()


def test_a_cheap_store_commits_once_per_batch_a_full_store_each_row(tmp_path):
    import numpy as np

    cheap, full = tmp_path / "cheap", tmp_path / "full"
    with RunStore(cheap, synchronous="NORMAL") as store:
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        with store.batch():
            assert [store.add(_evaluation(i)) for i in range(3)] == [0, 1, 2]
            with pytest.raises(RunStoreError, match="already"):
                store.add(_evaluation(1))  # a refused row keeps the batch
            assert _visible(cheap) == 0  # nothing committed inside the block
        assert _visible(cheap) == 3
        with pytest.raises(KeyError):
            with store.batch():
                store.add(_evaluation(3))
                raise KeyError("optimizer bug")
        assert _visible(cheap) == 4  # the rows of a block left by an exception are kept
        store.add(Evaluation(key="np", space="chain", genome={"w": np.int64(8)}, status="ok",
                             metrics={"a": np.float32(0.5), "b": float("nan")}))
        assert _visible(cheap) == 5  # outside a block: committed before add returns
        with store.batch():
            store.add(_evaluation(5))
    with RunStore(cheap, readonly=True) as store:
        evaluations = store.evaluations()
        assert [e.index for e in evaluations] == list(range(6))
        assert evaluations[4].genome == {"w": 8} and evaluations[4].metrics == {"a": 0.5, "b": None}
        assert evaluations[0] == _evaluation(0, index=0)
    with RunStore(full) as store:
        with store.batch():
            for i in range(3):
                store.add(_evaluation(i))
                assert _visible(full) == i + 1  # FULL: each row is committed as add returns


_BATCH_WRITER = """
    import sys
    from nascore.results import Evaluation
    from nascore.store import RunStore
    store = RunStore(sys.argv[1], synchronous="NORMAL")
    b = 0
    while True:
        with store.batch():
            for i in range(5 * b, 5 * b + 5):
                store.add(Evaluation(key=f"k{i}", space="s", genome={"i": i}, status="ok",
                                     metrics={"valid_accuracy": float(i)}))
        print(b, flush=True)
        b += 1
"""


def test_sigkill_of_a_cheap_store_keeps_every_finished_batch_and_no_partial_one(tmp_path):
    reported = _sigkilled_writer(_BATCH_WRITER, tmp_path, 8)
    assert reported == list(range(8))
    with RunStore(tmp_path, synchronous="NORMAL") as store:
        assert store._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        n = len(store)
        assert n >= 40 and n % 5 == 0  # whole batches only
        assert [e.index for e in store.evaluations()] == list(range(n))
        assert store.add(_evaluation(9999)) == n  # the count goes on from the stored rows
