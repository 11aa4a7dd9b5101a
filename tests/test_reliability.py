"""Reliability: dead workers are retried, workers die with their driver, damaged stores are
refused, and what finished is never lost (issue 16)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nascore.errors import RunStoreError
from nascore.executors import LocalExecutor, ProcessExecutor, WorkerDiedError
from nascore.results import Evaluation
from nascore.store import RunStore


def dies_once(job):
    """Kill its own worker the first time job ``x`` runs (a marker file remembers)."""
    x, marker_dir = job
    marker = Path(marker_dir) / f"died-{x}"
    if x == 1 and not marker.exists():
        marker.write_text(str(os.getpid()))
        os._exit(9)
    return {"value": x * x, "pid": os.getpid()}


def always_dies(job):
    x, _ = job
    if x == 1:
        os._exit(9)
    return {"value": x * x, "pid": os.getpid()}


def raises(job):
    x, _ = job
    if x == 1:
        raise ValueError("bad candidate 1")
    return {"value": x * x}


def test_process_each_retries_a_dead_worker_on_a_fresh_one_and_keeps_the_batch(tmp_path):
    with ProcessExecutor(workers=2, threads=1) as ex:
        assert ex.retries == 1
        got = {i: (res, err) for i, res, err in ex.each(dies_once, [(x, str(tmp_path)) for x in range(4)])}
    assert sorted(got) == [0, 1, 2, 3]
    assert all(err is None for _, err in got.values())
    assert [got[i][0]["value"] for i in range(4)] == [0, 1, 4, 9]
    dead_pid = int((tmp_path / "died-1").read_text())
    assert got[1][0]["pid"] != dead_pid  # ran again, on a fresh worker


def test_a_job_that_kills_every_worker_fails_alone_after_its_retries(tmp_path):
    with ProcessExecutor(workers=2, threads=1, retries=1) as ex:
        got = {i: (res, err) for i, res, err in ex.each(always_dies, [(x, str(tmp_path)) for x in range(3)])}
    assert isinstance(got[1][1], WorkerDiedError) and "2 times" in str(got[1][1])
    assert [got[i][0]["value"] for i in (0, 2)] == [0, 4]


def test_a_job_that_raises_is_not_retried_and_local_each_yields_one_at_a_time(tmp_path):
    seen = []

    def consume(ex):
        for i, res, err in ex.each(raises, [(x, "") for x in range(3)]):
            seen.append((i, res, type(err).__name__ if err else None))

    consume(LocalExecutor())
    assert seen == [(0, {"value": 0}, None), (1, None, "ValueError"), (2, {"value": 4}, None)]
    # lazily: nothing runs before the caller asks for the next result
    calls = []
    gen = LocalExecutor().each(lambda j: calls.append(j) or j, [1, 2, 3])
    assert calls == []
    next(gen)
    assert calls == [1]


# --------------------------------------------------------------------------- damaged stores


def _store_with_rows(run_dir: Path, n: int) -> bytes:
    with RunStore(run_dir) as store:
        for i in range(n):
            store.add(Evaluation(key=f"k{i:03d}", space="s", genome={"i": i}, status="ok",
                                 metrics={"valid_accuracy": float(i)}, curve=[{"epoch": 1}] * 20))
    return (run_dir / "run.sqlite").read_bytes()


@pytest.mark.parametrize("damage, what", [
    ("empty", "the file is empty"),
    ("garbage", "not an SQLite database"),
    ("truncated", "malformed"),
    ("foreign", "table evaluations, events, meta missing"),
])
def test_a_damaged_store_is_refused_never_taken_for_an_empty_run(tmp_path, damage, what):
    run = tmp_path / "run"
    run.mkdir()
    if damage == "foreign":
        db = sqlite3.connect(run / "run.sqlite")
        db.execute("CREATE TABLE notes (x)")
        db.commit()
        db.close()
    else:
        good = _store_with_rows(tmp_path / "good", 300)
        content = {"empty": b"", "garbage": b"not a database " * 300, "truncated": good[: len(good) // 2]}[damage]
        (run / "run.sqlite").write_bytes(content)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    for readonly in (False, True):
        with pytest.raises(RunStoreError, match="is damaged") as info:
            RunStore(run, readonly=readonly)
        message = str(info.value)
        assert what in message and "\n" not in message and "start a new run" in message
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # refused without touching it


def test_an_unwritable_run_directory_is_one_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(RunStoreError, match=r"cannot write the run directory .*choose another --out"):
        RunStore(blocker / "run")
