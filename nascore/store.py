"""The run store: one SQLite database per run directory (``run_dir/run.sqlite``).

The driver process is the single writer.  Every evaluation is committed in its own
transaction the moment :meth:`RunStore.add` is called, in WAL mode with
``synchronous=FULL``, so a run killed at any instant (SIGKILL, power loss) keeps every
row that :meth:`add` returned for; resume replays the search and serves those rows
instead of training again.  A cheap evaluator's store (table lookups) is the exception:
``synchronous=NORMAL``, no fsync at creation or close, one commit per
:meth:`RunStore.batch` (one ``SearchContext.evaluate`` call); a kill loses at most the
rows of the batch in progress, which replay recomputes (:meth:`RunStore.relax_sync`).
Everything is JSON; nothing is pickled.

A run directory is held by one process at a time: :class:`RunStore` takes an exclusive
``fcntl.flock`` on ``run_dir/.lock`` (released when the store is closed or the process
dies, so a lock left by a dead process never blocks) and a second opener gets
:class:`~nascore.errors.RunLockedError` naming the holder.  ``readonly=True`` opens
without the lock for reports and ``nascore show`` on a run that may still be going.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sqlite3
import threading
import time
from pathlib import Path

import attrs

from .errors import RunLockedError, RunStoreError
from .results import STATUSES, Evaluation, _clean

DB_NAME = "run.sqlite"
LOCK_NAME = ".lock"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL                -- JSON
);
CREATE TABLE IF NOT EXISTS evaluations (
    idx      INTEGER PRIMARY KEY,      -- completion order, from 0
    key      TEXT NOT NULL UNIQUE,
    space    TEXT NOT NULL,
    genome   TEXT NOT NULL,            -- JSON
    status   TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'stopped')),
    metrics  TEXT NOT NULL,            -- JSON
    curve    TEXT NOT NULL,            -- JSON
    error    TEXT,
    worker   TEXT,
    started  REAL,
    finished REAL
);
CREATE TABLE IF NOT EXISTS events (
    id   INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL                 -- JSON
);
CREATE INDEX IF NOT EXISTS events_kind ON events (kind);
"""

_COLUMNS = "idx, key, space, genome, status, metrics, curve, error, worker, started, finished"


@attrs.frozen
class Event:
    """One row of the ``events`` table: a log line, a figure, a phase change."""

    time: float
    kind: str
    data: dict

    def to_json(self) -> dict:
        return {"time": self.time, "kind": self.kind, "data": self.data}


def _dumps(value) -> str:
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise RunStoreError(f"cannot store {value!r:.80} as JSON: {exc}") from None


def _dumps_clean(value) -> str:
    """``_dumps(_clean(value))`` without the copy when ``value`` is already JSON-safe
    (the common case: plain floats, lists, string keys)."""
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        return _dumps(_clean(value))


def damaged_message(path: Path, what: str) -> str:
    return (f"{path} is damaged ({what}); nascore will not take it for an empty run: "
            f"restore it from a backup, or move {path.parent} aside and start a new run")


def check_intact(path: Path) -> None:
    """Refuse a store file that cannot be a run's: empty, not SQLite, or failing SQLite's
    ``quick_check`` (a truncated or overwritten file).  Raises :class:`RunStoreError`."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise RunStoreError(f"cannot read {path}: {exc.strerror or exc}") from None
    wal = path.with_name(path.name + "-wal")
    if size == 0 and not (wal.exists() and wal.stat().st_size > 0):
        raise RunStoreError(damaged_message(path, "the file is empty"))
    if size and head != b"SQLite format 3\x00":
        raise RunStoreError(damaged_message(path, "not an SQLite database"))
    try:
        # without a WAL file no writer is active: open immutable, so that the check
        # creates no -wal/-shm next to a file it may refuse
        flags = "mode=ro" if wal.exists() else "mode=ro&immutable=1"
        db = sqlite3.connect(f"{path.resolve().as_uri()}?{flags}", uri=True)
        try:
            verdict = db.execute("PRAGMA quick_check").fetchone()[0]
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            created = "meta" in tables and db.execute("SELECT 1 FROM meta WHERE key='created'").fetchone()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise RunStoreError(damaged_message(path, str(exc))) from None
    if verdict != "ok":
        raise RunStoreError(damaged_message(path, f"integrity check: {verdict}"))
    # a file SQLite opens but without the run's tables is not an empty run but a damaged one
    missing = sorted({"meta", "evaluations", "events"} - tables)
    if missing:
        raise RunStoreError(damaged_message(path, f"table {', '.join(missing)} missing"))
    if not created:
        raise RunStoreError(damaged_message(path, "its creation record is missing"))


class _DirLock:
    """Exclusive ``flock`` on ``run_dir/.lock`` holding ``pid@host`` of the holder."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / LOCK_NAME
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._holder()
            os.close(self._fd)
            self._fd = None
            raise RunLockedError(
                f"run directory {run_dir} is in use by process {holder}; wait for it to "
                "finish or stop that process (a dead process releases the lock by itself)"
            ) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}@{socket.gethostname()}\n".encode(), 0)

    def _holder(self) -> str:
        try:
            text = os.pread(self._fd, 256, 0).decode(errors="replace").strip()
        except OSError:
            text = ""
        if not text:
            return "(unknown pid)"
        pid, _, host = text.partition("@")
        return f"{pid} on {host}" if host else pid

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class RunStore:
    """SQLite store of one run: ``meta`` (config, seed, versions), ``evaluations`` (one row
    per finished evaluation, in completion order) and ``events``.

    ``RunStore(run_dir)`` creates the directory and database when missing
    (``create=False`` refuses a directory without one); ``readonly=True`` reads without
    taking the lock.  Thread-safe: executor callbacks may add results from other threads.
    """

    def __init__(self, run_dir, *, create: bool = True, readonly: bool = False, synchronous: str = "FULL"):
        if synchronous not in ("FULL", "NORMAL"):
            raise RunStoreError(f"synchronous must be FULL or NORMAL, got {synchronous!r}")
        self.synchronous = synchronous  # NORMAL: see relax_sync
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / DB_NAME
        self.readonly = readonly
        self._lock = None
        self._mutex = threading.RLock()
        self._batch_depth = 0  # open batch() blocks (a NORMAL store then defers its commit)
        existed = self.path.exists()
        if not existed and (readonly or not create):
            raise RunStoreError(f"no run store at {self.path}; is {self.run_dir} a run directory?")
        if existed:
            check_intact(self.path)
        if not readonly:
            try:
                self.run_dir.mkdir(parents=True, exist_ok=True)
                self._lock = _DirLock(self.run_dir)
            except OSError as exc:
                raise RunStoreError(f"cannot write the run directory {self.run_dir}: "
                                    f"{exc.strerror or exc}; choose another --out") from None
        try:
            self._db = self._connect()
        except BaseException:
            if getattr(self, "_db", None) is not None:
                self._db.close()
                self._db = None
            self._release_lock()
            raise

    @classmethod
    def open(cls, run_dir, create: bool = True, readonly: bool = False) -> "RunStore":
        return cls(run_dir, create=create, readonly=readonly)

    # ---- connection ------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            if self.readonly:
                db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                     isolation_level=None, check_same_thread=False)
                db.execute("SELECT count(*) FROM evaluations").fetchone()
                return db
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            # a NORMAL store is created without fsync (the switch to WAL alone costs four):
            # until its first checkpoint a power loss leaves it refused as damaged either
            # way (the schema lives in the unsynced WAL), and a process kill loses nothing
            db.execute(f"PRAGMA synchronous={'OFF' if self.synchronous == 'NORMAL' else self.synchronous}")
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise RunStoreError(f"{self.path}: SQLite refused WAL mode (got {mode!r}); use a local disk")
            with db:  # schema and creation record in one transaction: one commit
                db.execute("BEGIN IMMEDIATE")
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                if db.execute("SELECT 1 FROM meta WHERE key='created'").fetchone() is None:
                    from . import __version__

                    for key, value in (("created", time.time()), ("nascore_version", __version__),
                                       ("schema_version", SCHEMA_VERSION)):
                        db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, _dumps(value)))
            db.execute(f"PRAGMA synchronous={self.synchronous}")
            self._count = db.execute("SELECT count(*) FROM evaluations").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise RunStoreError(f"{self.path} is not a readable run store: {exc}") from None
        return db

    def relax_sync(self) -> None:
        """``synchronous=NORMAL`` (WAL): every committed row still survives the process
        being killed, but a power loss or OS crash may drop the last commits, and, since
        such a store is created and closed without fsync, may leave it damaged (then
        refused, never taken for an empty run).  For evaluations that are cheaper than an
        fsync (table lookups) replay recomputes such rows in microseconds, while FULL would
        make the run directory cost 30x the search (benchmarks/run_overhead.py).  Such a
        store also commits once per :meth:`batch` rather than once per row."""
        with self._mutex:
            self._check_writable()
            self._db.execute("PRAGMA synchronous=NORMAL")
            self.synchronous = "NORMAL"

    def _check_writable(self) -> None:
        if self.readonly:
            raise RunStoreError(f"{self.path} was opened read-only")
        if self._db is None:
            raise RunStoreError(f"{self.path} is closed")

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def close(self) -> None:
        """Close the database (checkpointing the WAL) and release the run directory."""
        with self._mutex:
            if getattr(self, "_db", None) is not None:
                if not self.readonly and self._db.in_transaction:
                    self._db.execute("COMMIT")  # closed inside a batch: keep its rows
                if self.synchronous == "NORMAL" and not self.readonly:
                    # the closing checkpoint without fsync (three of them otherwise): see relax_sync
                    self._db.execute("PRAGMA synchronous=OFF")
                self._db.close()
                self._db = None
            self._release_lock()

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    # ---- meta ------------------------------------------------------------------------
    def set_meta(self, key: str, value) -> None:
        """Store a JSON value under ``key`` (``config``, ``seed``, ...), replacing it."""
        with self._mutex:
            self._check_writable()
            with self._db:
                self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, _dumps(value)))

    def get_meta(self, key: str, default=None):
        with self._mutex:
            row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def meta(self) -> dict:
        with self._mutex:
            rows = self._db.execute("SELECT key, value FROM meta ORDER BY key").fetchall()
        return {k: json.loads(v) for k, v in rows}

    # ---- evaluations -----------------------------------------------------------------
    def add(self, evaluation: Evaluation) -> int:
        """Commit one evaluation now; returns its ``index`` (completion order, from 0).

        Non-finite metric values are stored as null (JSON has no NaN)."""
        if evaluation.status not in STATUSES:
            raise RunStoreError(f"evaluation {evaluation.key}: status must be one of {STATUSES}, "
                                f"got {evaluation.status!r}")
        e = evaluation
        row = [None, e.key, e.space, _dumps_clean(e.genome), e.status, _dumps_clean(e.metrics),
               _dumps_clean(e.curve), e.error, e.worker, _clean(e.started), _clean(e.finished)]
        with self._mutex:
            self._check_writable()
            # the single writer counts its rows (the lock excludes every other writer), so
            # no count(*) per row; the row is committed before add returns
            row[0] = idx = self._count
            try:
                if self._batch_depth:  # committed when the batch ends
                    if not self._db.in_transaction:
                        self._db.execute("BEGIN IMMEDIATE")
                    self._db.execute(f"INSERT INTO evaluations ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)", row)
                else:
                    with self._db:
                        self._db.execute(f"INSERT INTO evaluations ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)", row)
            except sqlite3.IntegrityError:
                raise RunStoreError(f"evaluation {evaluation.key} is already in {self.path}; "
                                    "serve it from the store instead of evaluating it again") from None
            self._count += 1
        return idx

    @contextlib.contextmanager
    def batch(self):
        """Rows added inside the block are committed together when it ends (also when it
        ends by an exception): one commit per batch instead of one per row.  Only a
        ``synchronous=NORMAL`` store (a cheap evaluator's, see :meth:`relax_sync`) batches;
        there a commit costs more than the evaluation, and a kill inside the block loses
        only rows that replay recomputes in microseconds.  A FULL store still commits
        each row before :meth:`add` returns.  Blocks nest; the outermost one commits."""
        if self.readonly or self.synchronous != "NORMAL":
            yield self
            return
        with self._mutex:
            self._check_writable()
            self._batch_depth += 1
        try:
            yield self
        finally:
            with self._mutex:
                self._batch_depth -= 1
                if not self._batch_depth and self._db is not None and self._db.in_transaction:
                    self._db.execute("COMMIT")

    @staticmethod
    def _row(row) -> Evaluation:
        idx, key, space, genome, status, metrics, curve, error, worker, started, finished = row
        return Evaluation(key=key, space=space, genome=json.loads(genome), status=status,
                          metrics=json.loads(metrics), curve=json.loads(curve), error=error,
                          worker=worker, started=started, finished=finished, index=idx)

    def get(self, key: str) -> Evaluation | None:
        with self._mutex:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM evaluations WHERE key=?", (key,)).fetchone()
        return None if row is None else self._row(row)

    def evaluations(self) -> list[Evaluation]:
        """All evaluations in completion order."""
        with self._mutex:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM evaluations ORDER BY idx").fetchall()
        return [self._row(r) for r in rows]

    def keys(self) -> set[str]:
        with self._mutex:
            return {r[0] for r in self._db.execute("SELECT key FROM evaluations")}

    def __contains__(self, key) -> bool:
        with self._mutex:
            return self._db.execute("SELECT 1 FROM evaluations WHERE key=?", (key,)).fetchone() is not None

    def __len__(self) -> int:
        with self._mutex:
            return self._db.execute("SELECT count(*) FROM evaluations").fetchone()[0]

    # ---- events ----------------------------------------------------------------------
    def event(self, kind: str, **data) -> Event:
        """Record an event (``log``, ``figure`` with ``path``/``title``, ``phase``, ...)."""
        ev = Event(time.time(), kind, data)
        payload = _dumps(data)
        with self._mutex:
            self._check_writable()
            with self._db:
                self._db.execute("INSERT INTO events (time, kind, data) VALUES (?, ?, ?)", (ev.time, kind, payload))
        return ev

    def events(self, kind: str | None = None) -> list[Event]:
        """Events in the order recorded, all or those of one ``kind``."""
        sql, args = "SELECT time, kind, data FROM events", ()
        if kind is not None:
            sql, args = sql + " WHERE kind=?", (kind,)
        with self._mutex:
            rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
        return [Event(t, k, json.loads(d)) for t, k, d in rows]

    def __repr__(self) -> str:
        return f"RunStore({str(self.run_dir)!r}, evaluations={len(self) if self._db else 'closed'})"
