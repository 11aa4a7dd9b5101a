"""Kill a real `nascore run` with SIGKILL mid-search, resume it, compare with an
uninterrupted run: nothing finished is lost, nothing is trained twice."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

CONFIG = """
name = "resume-test"
seed = 5
budget = 8
[task]
dataset = "digits"
subset = 600
eval_subset = 200
[space]
name = "nb201"
C = 4
N = 1
[optimizer]
name = "regularized-evolution"
population = 4
sample_size = 2
[evaluator]
name = "train"
epochs = 3
batch_size = 64
measure_latency = false
[executor]
name = "local"
"""


def rows(run_dir):
    path = run_dir / "run.sqlite"
    if not path.exists():
        return []
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return con.execute("SELECT key, status, metrics, worker FROM evaluations ORDER BY idx").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


def nascore(*args, **kw):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "nascore.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text(CONFIG)
    killed = tmp_path / "killed"
    proc = nascore("run", str(cfg), "--out", str(killed), "--quiet")
    deadline = time.time() + 240
    while len(rows(killed)) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = rows(killed)
    assert 3 <= len(before) < 8

    # a second process cannot take the directory while it is held; after the kill it can
    resumed = nascore("run", "--resume", str(killed), "--quiet")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    after = rows(killed)
    assert after[: len(before)] == before  # nothing finished was lost or rewritten
    keys = [r[0] for r in after]
    assert len(keys) == len(set(keys)) == 8  # nothing evaluated twice
    first_pid = before[0][3]
    assert all(r[3] == first_pid for r in before) and all(r[3] != first_pid for r in after[len(before):])

    clean = tmp_path / "clean"
    full = nascore("run", str(cfg), "--out", str(clean), "--quiet")
    full.communicate(timeout=300)
    reference = rows(clean)
    # the store keeps completion order; compare what was evaluated and what it scored
    assert sorted(r[0] for r in reference) == sorted(keys)
    score = lambda rs: {r[0]: json.loads(r[2])["valid_accuracy"] for r in rs}  # noqa: E731
    assert score(reference) == score(after)
    assert max(score(after).values()) > 50  # real training happened
    result = json.loads((killed / "result.json").read_text())
    assert result["best"]["key"] == json.loads((clean / "result.json").read_text())["best"]["key"]


def test_second_process_is_refused_while_a_run_holds_the_directory(tmp_path):
    from nascore.errors import RunLockedError
    from nascore.store import RunStore

    store = RunStore(tmp_path)
    try:
        (tmp_path / "config.toml").write_text(CONFIG)
        proc = nascore("run", "--resume", str(tmp_path), "--quiet")
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 2
        assert err.strip().startswith("nascore: error:") and str(os.getpid()) in err
        with pytest.raises(RunLockedError, match=f"in use by process {os.getpid()}"):
            RunStore(tmp_path)  # the API's refusal: a second opener, even in this process
    finally:
        store.close()
    RunStore(tmp_path).close()  # closing released the lock
