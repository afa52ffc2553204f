"""The run history: every run, its steps, cache lookups and verifications, in SQLite.

``.attest/history.db`` (``history.path``) in WAL mode, so ``attest history`` and
``attest serve`` read while runs write, and concurrent runs serialize their short write
transactions (``BEGIN IMMEDIATE`` with a generous busy timeout). Beside the rows, the
``series`` table keeps the cumulative metric values per pipeline; each finished run adds
its :class:`Tally` to it in the same transaction. Exporters read that small table, never
the whole run table, and its values are monotonic across restarts and retention pruning
(which deletes old runs, not their totals).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any

from attest_cli.config.layers import Settings
from attest_cli.context import AppContext
from attest_cli.engine.events import (
    CacheChecked,
    Event,
    EventBus,
    RunFinished,
    RunStarted,
    StepFinished,
    VerificationFinished,
)
from attest_cli.engine.run_report import RunReport
from attest_cli.errors import ConfigError
from attest_cli.logging.structured import fields
from attest_cli.metrics.tally import Tally, account, run_outcome
from attest_cli.record import Record

log = logging.getLogger("attest.history")

BUSY_TIMEOUT_MS = 30_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, status TEXT NOT NULL, exit_code INTEGER,
    started_at REAL NOT NULL, finished_at REAL, duration_seconds REAL, hostname TEXT,
    attest_version TEXT, pipeline_file TEXT, steps_total INTEGER NOT NULL DEFAULT 0,
    steps_success INTEGER NOT NULL DEFAULT 0, interrupted_by INTEGER, pid INTEGER,
    process_start TEXT);
CREATE INDEX IF NOT EXISTS runs_by_start ON runs (started_at);
CREATE INDEX IF NOT EXISTS runs_by_pipeline ON runs (pipeline, started_at);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL, exit_code INTEGER,
    wall_seconds REAL, cache_hit INTEGER NOT NULL DEFAULT 0, cache_backend TEXT, reason TEXT,
    PRIMARY KEY (run_id, name));
CREATE TABLE IF NOT EXISTS cache_lookups (
    run_id TEXT NOT NULL, backend TEXT NOT NULL, hits INTEGER NOT NULL,
    misses INTEGER NOT NULL, PRIMARY KEY (run_id, backend));
CREATE TABLE IF NOT EXISTS verifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, pipeline TEXT NOT NULL, kind TEXT,
    ok INTEGER NOT NULL, reason TEXT, duration_seconds REAL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS verifications_by_run ON verifications (run_id);
CREATE TABLE IF NOT EXISTS series (
    kind TEXT NOT NULL, name TEXT NOT NULL, pipeline TEXT NOT NULL, labels TEXT NOT NULL,
    value REAL NOT NULL, PRIMARY KEY (name, pipeline, labels));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('generation', 0);
"""
# columns added after the first release: (name, type), added to older files by ensure()
_ADDED_COLUMNS = (("runs", "pid", "INTEGER"), ("runs", "process_start", "TEXT"))
_INDEXES = "CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status);"
# PRAGMA user_version of a file that ensure() brought up to date: derived from the schema,
# so that any change to it migrates every file once (ensure is idempotent and race-safe)
_SCHEMA_MARK = zlib.crc32(repr((_SCHEMA, _ADDED_COLUMNS, _INDEXES)).encode()) & 0x7FFFFFFF


class Verification(Record):
    """One verification of a receipt, as the run history records it."""

    kind: str
    ok: bool
    reason: str | None
    duration: float
    at: float

    def __init__(self, kind: str, ok: bool, reason: str | None, duration: float,
                 at: float) -> None:
        self.kind = kind
        self.ok = ok
        self.reason = reason
        self.duration = duration
        self.at = at


class RunRecord(Record):
    """What ``attest history`` shows for one run."""

    run_id: str
    pipeline: str
    status: str
    exit_code: int | None
    started_at: float
    finished_at: float | None
    duration_seconds: float | None
    hostname: str
    steps_total: int
    steps_success: int
    steps: list[dict[str, Any]]
    cache: dict[str, dict[str, int]]
    verifications: list[dict[str, Any]]

    def __init__(self, run_id: str, pipeline: str, status: str, exit_code: int | None,
                 started_at: float, finished_at: float | None,
                 duration_seconds: float | None, hostname: str, steps_total: int,
                 steps_success: int, steps: list[dict[str, Any]] | None = None,
                 cache: dict[str, dict[str, int]] | None = None,
                 verifications: list[dict[str, Any]] | None = None) -> None:
        self.run_id = run_id
        self.pipeline = pipeline
        self.status = status
        self.exit_code = exit_code
        self.started_at = started_at
        self.finished_at = finished_at
        self.duration_seconds = duration_seconds
        self.hostname = hostname
        self.steps_total = steps_total
        self.steps_success = steps_success
        self.steps = [] if steps is None else steps
        self.cache = {} if cache is None else cache
        self.verifications = [] if verifications is None else verifications

    @property
    def cache_hits(self) -> int:
        return sum(c["hits"] for c in self.cache.values())

    @property
    def cache_lookups(self) -> int:
        return sum(c["hits"] + c["misses"] for c in self.cache.values())


def history_path(ctx: AppContext, settings: Settings) -> Path:
    return ctx.path(str(settings["history.path"]))


class HistoryDB:
    """One history file. Connections are short-lived and per call, so any thread may use it."""

    def __init__(self, path: Path, retention_days: int = 0, keep_runs: int = 0) -> None:
        self.path = path
        self.retention_days = retention_days
        self.keep_runs = keep_runs
        self._ready = False
        self._held: sqlite3.Connection | None = None

    @classmethod
    def from_settings(cls, ctx: AppContext, settings: Settings) -> HistoryDB:
        return cls(history_path(ctx, settings), int(settings["history.retention_days"]),
                   int(settings["history.keep_runs"]))

    # -- connections --------------------------------------------------------------------
    @contextlib.contextmanager
    def connect(self, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection in autocommit mode; ``write`` wraps the block in BEGIN IMMEDIATE."""
        if not self._ready:
            self.ensure()
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # WAL + NORMAL: a commit survives a crash of attest (not a power cut), with no
            # fsync per run
            conn.execute("PRAGMA synchronous = NORMAL")
            if not write:
                yield conn
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'generation'")
                conn.execute("COMMIT")
            except BaseException:
                _roll_back(conn)
                raise
        finally:
            conn.close()

    def hold(self) -> None:
        """Keep one idle connection open until :meth:`release`.

        The last connection to close checkpoints the WAL into the database (four fsyncs);
        with one held, the per-call connections close without it, and a run pays for one
        checkpoint, at its end, instead of one per write. Idle, it blocks no reader, writer
        or checkpoint. A history that cannot be opened is left to the writes to report.
        """
        if self._held is not None:
            return
        try:
            if not self._ready:
                self.ensure()
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000,
                                   isolation_level=None, check_same_thread=False)
            try:
                conn.execute("SELECT value FROM meta LIMIT 1").fetchall()  # opens the WAL
            except sqlite3.Error:
                conn.close()
                raise
        except (sqlite3.Error, OSError):
            return
        self._held = conn

    def release(self) -> None:
        """Close the connection :meth:`hold` opened (the checkpoint happens here)."""
        conn, self._held = self._held, None
        if conn is not None:
            conn.close()

    def ensure(self) -> None:
        """Create the file and schema (idempotent, safe when several processes race)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if conn.execute("PRAGMA user_version").fetchone()[0] == _SCHEMA_MARK:
                self._ready = True  # up to date: every run opens the history, ~1 ms saved
                return
            _use_wal(conn)
            # one transaction, not one per statement with an fsync each (executescript
            # commits every statement): a fresh workspace's first run paid ~20 fsyncs here
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                # a concurrent process may have brought it up to date while this one waited
                if conn.execute("PRAGMA user_version").fetchone()[0] != _SCHEMA_MARK:
                    self._migrate(conn)
                conn.execute("COMMIT")
            except BaseException:
                _roll_back(conn)
                raise
        finally:
            conn.close()
        self._ready = True

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        """The schema, the columns added since, the indexes and the mark, in the caller's
        transaction."""
        for statement in _statements(_SCHEMA):
            conn.execute(statement)
        for table, column, kind in _ADDED_COLUMNS:
            have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        for statement in _statements(_INDEXES):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {_SCHEMA_MARK}")

    # -- writes ---------------------------------------------------------------------------
    def record_started(self, report: RunReport) -> None:
        with self.connect(write=True) as conn:
            conn.execute(
                "INSERT OR REPLACE INTO runs (run_id, pipeline, status, started_at, hostname, "
                "attest_version, pipeline_file, pid, process_start) "
                "VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?)",
                (report.run_id, report.pipeline, report.started_at, report.hostname,
                 report.attest_version, report.pipeline_file, report.pid,
                 report.process_start))

    def record_finished(self, report: RunReport, cache: dict[str, dict[str, int]],
                        verifications: list[Verification], tally: Tally) -> None:
        """The run's row, steps, lookups and verifications, and its totals: one transaction."""
        finished = report.finished_at or time.time()
        with self.connect(write=True) as conn:
            conn.execute(
                "INSERT OR REPLACE INTO runs (run_id, pipeline, status, exit_code, started_at, "
                "finished_at, duration_seconds, hostname, attest_version, pipeline_file, "
                "steps_total, steps_success, interrupted_by, pid, process_start) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (report.run_id, report.pipeline, report.status, report.exit_code,
                 report.started_at, finished, max(0.0, finished - report.started_at),
                 report.hostname, report.attest_version, report.pipeline_file,
                 len(report.steps), report.steps_success, report.interrupted_by, report.pid,
                 report.process_start))
            conn.executemany(
                "INSERT OR REPLACE INTO steps (run_id, name, status, exit_code, wall_seconds, "
                "cache_hit, cache_backend, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(report.run_id, s.name, s.status, s.exit_code, s.wall_seconds, int(s.cache_hit),
                  s.cache_backend, s.reason) for s in report.steps])
            conn.executemany(
                "INSERT OR REPLACE INTO cache_lookups (run_id, backend, hits, misses) "
                "VALUES (?, ?, ?, ?)",
                [(report.run_id, b, c.get("hits", 0), c.get("misses", 0))
                 for b, c in cache.items()])
            self._insert_verifications(conn, report.run_id, report.pipeline, verifications)
            self._add(conn, tally)
            self._prune(conn)

    def mark_abandoned(self) -> list[str]:
        """Mark ``abandoned`` the ``running`` runs whose process is provably gone.

        Only runs of this host that recorded their process identity are judged (see
        :mod:`attest_cli.procid`); each counts once as a failed execution in the totals
        (the ``status`` label stays success|failure), in the transaction that marks it.
        Returns the run ids marked.
        """
        from attest_cli.procid import is_dead

        with self.connect() as conn:
            rows = conn.execute(
                "SELECT run_id, pipeline, pid, hostname, process_start FROM runs "
                "WHERE status = 'running' AND pid IS NOT NULL").fetchall()
        dead = [(run_id, pipeline) for run_id, pipeline, pid, host, start in rows
                if is_dead(pid, host, start)]
        if not dead:
            return []
        marked: list[str] = []
        tally = Tally()
        with self.connect(write=True) as conn:
            for run_id, pipeline in dead:
                cur = conn.execute("UPDATE runs SET status = 'abandoned' "
                                   "WHERE run_id = ? AND status = 'running'", (run_id,))
                if cur.rowcount:  # not already marked by a concurrent look
                    marked.append(run_id)
                    tally.inc("pipeline_executions_total", pipeline,
                              (run_outcome("abandoned"),))
            self._add(conn, tally)
        return marked

    def record_verifications(self, run_id: str | None, pipeline: str,
                             verifications: list[Verification], tally: Tally) -> None:
        with self.connect(write=True) as conn:
            self._insert_verifications(conn, run_id, pipeline, verifications)
            self._add(conn, tally)

    @staticmethod
    def _insert_verifications(conn: sqlite3.Connection, run_id: str | None, pipeline: str,
                              verifications: list[Verification]) -> None:
        conn.executemany(
            "INSERT INTO verifications (run_id, pipeline, kind, ok, reason, duration_seconds, "
            "at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(run_id, pipeline, v.kind, int(v.ok), v.reason, v.duration, v.at)
             for v in verifications])

    @staticmethod
    def _add(conn: sqlite3.Connection, tally: Tally) -> None:
        snap = tally.copy()
        conn.executemany(
            "INSERT INTO series (kind, name, pipeline, labels, value) VALUES ('c', ?, ?, ?, ?) "
            "ON CONFLICT (name, pipeline, labels) DO UPDATE SET value = value + excluded.value",
            [(n, p, labels_text(lab), v) for (n, p, lab), v in snap.counters.items()])
        conn.executemany(
            "INSERT INTO series (kind, name, pipeline, labels, value) VALUES ('g', ?, ?, ?, ?) "
            "ON CONFLICT (name, pipeline, labels) DO UPDATE SET value = max(value, "
            "excluded.value)",
            [(n, p, labels_text(lab), v) for (n, p, lab), v in snap.gauges.items()])

    def _prune(self, conn: sqlite3.Connection) -> None:
        """Delete runs older than ``history.retention_days`` (0 keeps everything), and the
        step rows of all but the newest ``history.keep_runs`` runs.

        The step rows are nearly all of the file (one per step per run: a 5,000-step
        pipeline's history grew by ~1 MB a run); a run older than ``keep_runs`` keeps its
        own row, its cache lookups and its share of the totals, as its report and logs
        under ``.attest/`` are gone by then too."""
        if self.keep_runs > 0:
            conn.execute("DELETE FROM steps WHERE run_id IN (SELECT run_id FROM runs "
                         "ORDER BY started_at DESC, run_id DESC LIMIT -1 OFFSET ?)",
                         (self.keep_runs,))
        if self.retention_days <= 0:
            return
        cutoff = time.time() - self.retention_days * 86400.0
        old = "SELECT run_id FROM runs WHERE started_at < ?"
        for table in ("steps", "cache_lookups", "verifications"):
            conn.execute(f"DELETE FROM {table} WHERE run_id IN ({old})", (cutoff,))
        conn.execute("DELETE FROM verifications WHERE run_id IS NULL AND at < ?", (cutoff,))
        conn.execute("DELETE FROM runs WHERE started_at < ?", (cutoff,))

    # -- reads ----------------------------------------------------------------------------
    def generation(self) -> int:
        with self.connect() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0]) if row else 0

    def snapshot(self, pipeline: str | None = None) -> Tally:
        """The cumulative metric values (of one pipeline, or all), as a :class:`Tally`."""
        sql = "SELECT kind, name, pipeline, labels, value FROM series"
        args: tuple[Any, ...] = ()
        if pipeline is not None:
            sql += " WHERE pipeline = ?"
            args = (pipeline,)
        tally = Tally()
        with self.connect() as conn:
            for kind, name, pipe, labels, value in conn.execute(sql, args):
                key = (name, pipe, tuple(json.loads(labels)))
                (tally.counters if kind == "c" else tally.gauges)[key] = float(value)
        return tally

    def runs(self, *, limit: int = 20, pipeline: str | None = None,
             failures_only: bool = False) -> list[RunRecord]:
        """Newest first; ``failures_only`` keeps failed, interrupted and abandoned runs."""
        where, args = [], []
        if pipeline is not None:
            where.append("pipeline = ?")
            args.append(pipeline)
        if failures_only:
            where.append("status IN ('failure', 'interrupted', 'abandoned')")
        sql = ("SELECT run_id, pipeline, status, exit_code, started_at, finished_at, "
               "duration_seconds, hostname, steps_total, steps_success FROM runs"
               + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY started_at DESC, run_id DESC LIMIT ?")
        with self.connect() as conn:
            records = [RunRecord(*row) for row in conn.execute(sql, (*args, limit))]
            for rec in records:
                rec.steps = [dict(zip(("name", "status", "exit_code", "wall_seconds",
                                       "cache_hit", "cache_backend", "reason"), row, strict=True))
                             for row in conn.execute(
                                 "SELECT name, status, exit_code, wall_seconds, cache_hit, "
                                 "cache_backend, reason FROM steps WHERE run_id = ? "
                                 "ORDER BY rowid", (rec.run_id,))]
                for s in rec.steps:
                    s["cache_hit"] = bool(s["cache_hit"])
                rec.cache = {b: {"hits": h, "misses": m} for b, h, m in conn.execute(
                    "SELECT backend, hits, misses FROM cache_lookups WHERE run_id = ? "
                    "ORDER BY backend", (rec.run_id,))}
                rec.verifications = [
                    {"kind": k, "ok": bool(ok), "reason": r, "duration_seconds": d}
                    for k, ok, r, d in conn.execute(
                        "SELECT kind, ok, reason, duration_seconds FROM verifications "
                        "WHERE run_id = ? ORDER BY id", (rec.run_id,))]
        return records

    def check_writable(self) -> None:
        """Open a write transaction and roll it back (the readiness check)."""
        if not self._ready:
            self.ensure()
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE meta SET value = value WHERE key = 'generation'")
            conn.execute("ROLLBACK")
        finally:
            conn.close()


class HistoryRecorder:
    """The run observer that writes the history; failures are warnings, never run errors.

    ``standalone`` is for commands without a run (``attest verify``): verifications are
    kept in memory, with an empty pipeline, and written by :meth:`flush` in one transaction
    (a commit costs milliseconds, a verification about one); the command calls
    :meth:`close` in a ``finally``, so an interrupted command records what it verified.
    """

    def __init__(self, db: HistoryDB, *, standalone: bool = False) -> None:
        self.db = db
        self.standalone = standalone
        self.tally = Tally()  # this run's contribution (the live endpoint reads it too)
        self.recorded = False  # the finished run reached the database
        self._report: RunReport | None = None
        self._finished = False
        self._cache: dict[str, dict[str, int]] = {}
        self._verifications: list[Verification] = []
        self._pending = Tally()  # standalone: counted, not yet written
        self._lock = threading.Lock()

    @property
    def pipeline(self) -> str:
        return self._report.pipeline if self._report is not None else ""

    # StepStarted, StepOutput, CacheStored: nothing to count (see metrics.tally.account)
    observed_events = (RunStarted, CacheChecked, StepFinished, VerificationFinished,
                       RunFinished)

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._report = event.report
            self._guard("record the start of the run", self.db.record_started, event.report)
            return
        account(self.tally, event, self.pipeline)
        if isinstance(event, CacheChecked):
            counts = self._cache.setdefault(event.backend, {"hits": 0, "misses": 0})
            counts["hits" if event.hit else "misses"] += 1
        elif isinstance(event, VerificationFinished):
            v = Verification(event.kind, event.ok, event.reason, event.duration, event.at)
            with self._lock:
                self._verifications.append(v)
                if self.standalone:
                    account(self._pending, event, "")
        elif isinstance(event, RunFinished):
            self._finish(event.report)  # steps are written with the run: the report has them

    def _finish(self, report: RunReport) -> None:
        with self._lock:
            if self._finished:
                return
            self._finished = True
        self.recorded = self._guard("record the run", self.db.record_finished, report,
                                    self._cache, self._verifications, self.tally)

    def flush(self) -> bool:
        """Standalone: write the verifications buffered so far and their totals, at once.

        What was taken from the buffer is written or warned about, never written twice;
        ``False`` when the write failed.
        """
        with self._lock:
            if not self.standalone or not self._verifications:
                return True
            verifications, self._verifications = self._verifications, []
            pending, self._pending = self._pending, Tally()
        return self._guard(f"record {len(verifications)} verification(s)",
                           self.db.record_verifications, None, "", verifications, pending)

    def close(self) -> None:
        """Standalone: flush. (A run always ends with RunFinished, an internal error too:
        the run service decides and publishes the status; the recorder only writes it.)"""
        if self.standalone:
            self.flush()

    def _guard(self, what: str, func: Any, *args: Any) -> bool:
        try:
            func(*args)
            return True
        except (sqlite3.Error, OSError) as exc:
            log.warning("run history: could not %s in %s: %s", what, self.db.path, exc,
                        extra=fields(path=str(self.db.path)))
            return False


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL (once per file). The switch needs the file to itself, and
    SQLite answers "database is locked" at once instead of waiting (its busy handler does
    not cover it): processes racing to create one history failed here. Retried, with the
    busy timeout's bound; a process that finds WAL already on has nothing to do."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.002
    while conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        try:
            conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def _roll_back(conn: sqlite3.Connection) -> None:
    """Roll back an open transaction; SQLite may have ended it itself (a full disk, an I/O
    error), and a ROLLBACK then would raise over the error that matters."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _statements(script: str) -> list[str]:
    """The statements of one of this module's own scripts (no ``;`` inside a literal)."""
    return [part.strip() for part in script.split(";") if part.strip()]


def labels_text(labels: tuple[str, ...]) -> str:
    """The stored form of a series' labels, ``json.dumps(list(labels))`` exactly (the
    totals are keyed by it, so it must never change), built from the encoder's C string
    quoting: a 1,000-step run writes 3,000 series at its end, and ``json.dumps`` was 5.5 ms
    of the 13 ms that took."""
    if all(type(label) is str for label in labels):
        return "[" + ", ".join(map(encode_basestring_ascii, labels)) + "]"
    return json.dumps(list(labels))


def open_history(ctx: AppContext, settings: Settings) -> HistoryDB:
    """The history for a command that needs it; an unusable file is one clear error line."""
    db = HistoryDB.from_settings(ctx, settings)
    try:
        db.ensure()
    except (sqlite3.Error, OSError) as exc:
        raise ConfigError(f"history.path: cannot open the run history {db.path}: {exc}") from None
    return db


def attach_standalone(bus: EventBus, ctx: AppContext, settings: Settings) -> HistoryRecorder:
    """Record the verifications of a command that is not a run (``attest verify``).

    The caller must call ``close()`` on the recorder when the command ends (in a
    ``finally``): nothing reaches the database before that.
    """
    recorder = HistoryRecorder(HistoryDB.from_settings(ctx, settings), standalone=True)
    bus.subscribe(recorder)
    return recorder


class HistorySnapshots:
    """A snapshot source for exporters: re-reads the totals only when a write happened.

    Each call costs one indexed read of the generation counter; the ``series`` table (its
    size bounded by pipelines x steps x buckets, not by the number of runs) is read again
    only after some process committed a run.
    """

    def __init__(self, db: HistoryDB, pipeline: str | None = None) -> None:
        self.db = db
        self.pipeline = pipeline
        self._generation: int | None = None
        self._snapshot = Tally()
        self._lock = threading.Lock()

    def __call__(self) -> Tally:
        return self.keyed()[1]()

    def keyed(self) -> tuple[int | None, Callable[[], Tally]]:
        """``(generation, snapshot thunk)`` for :class:`metrics.CachedExposition`."""
        with self._lock:
            generation = self.db.generation()
            if generation != self._generation:
                self._snapshot = self.db.snapshot(self.pipeline)
                self._generation = generation
            snapshot = self._snapshot
            return generation, lambda: snapshot
