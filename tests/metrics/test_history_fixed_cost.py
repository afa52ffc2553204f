"""What the history costs every run, whatever its size.

The schema is brought up to date once per file, not by every process that opens it: each
run opens the history twice (abandoned runs, then the recorder), and running the schema
script and the column checks each time was ~1 ms apiece. And a run checkpoints the WAL
once, at its end, not after each of its writes (four fsyncs each).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from attest_cli.metrics.history import HistoryDB, labels_text
from tests.support import attest, write_pipeline


def _indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}


@pytest.mark.unit
def test_an_up_to_date_history_is_not_migrated_again(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    HistoryDB(path).ensure()
    assert "runs_by_status" in _indexes(path)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP INDEX runs_by_status")  # a marker: re-running the script restores it
    HistoryDB(path).ensure()
    assert "runs_by_status" not in _indexes(path)
    assert HistoryDB(path).runs() == []


@pytest.mark.unit
def test_a_history_from_before_the_version_mark_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    with sqlite3.connect(path) as conn:  # the first release's runs table: no pid columns
        conn.execute("CREATE TABLE runs (run_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, "
                     "status TEXT NOT NULL, exit_code INTEGER, started_at REAL NOT NULL, "
                     "finished_at REAL, duration_seconds REAL, hostname TEXT, "
                     "attest_version TEXT, pipeline_file TEXT, "
                     "steps_total INTEGER NOT NULL DEFAULT 0, "
                     "steps_success INTEGER NOT NULL DEFAULT 0, interrupted_by INTEGER)")
    HistoryDB(path).ensure()
    with sqlite3.connect(path) as conn:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"pid", "process_start"} <= columns
    assert "runs_by_status" in _indexes(path)


def test_a_run_checkpoints_the_history_once_at_its_end(project: Path) -> None:
    """The run's start is in the WAL while its steps run (no checkpoint after that write),
    and the WAL is checkpointed and removed once the run ends, with the run recorded."""
    write_pipeline(project, """
        steps:
          look:
            run: 'test -s .attest/history.db-wal && echo kept > wal.txt || echo gone > wal.txt'
            cache: false
    """)
    for _ in range(2):
        proc = attest("run", cwd=project)
        assert proc.returncode == 0, proc.stderr
        assert (project / "wal.txt").read_text() == "kept\n"
        assert not (project / ".attest" / "history.db-wal").exists()
    runs = HistoryDB(project / ".attest" / "history.db").runs()
    assert [r.status for r in runs] == ["success", "success"]


@pytest.mark.unit
def test_a_new_history_is_created_in_one_transaction(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Each statement of the schema committed on its own was an fsync each (~20 for a new
    file, a fresh checkout's first run): the whole migration is one write transaction."""
    statements: list[str] = []
    connect = sqlite3.connect

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced)
    path = tmp_path / "history.db"
    HistoryDB(path).ensure()
    monkeypatch.undo()
    begin = statements.index("BEGIN IMMEDIATE")
    creates = [i for i, s in enumerate(statements) if s.startswith("CREATE")]
    assert len(creates) == 10
    assert statements.count("COMMIT") == 1
    assert begin < min(creates) and max(creates) < statements.index("COMMIT")
    assert "runs_by_status" in _indexes(path)
    assert HistoryDB(path).runs() == []


@pytest.mark.unit
@pytest.mark.parametrize("labels", [(), ("a",), ("s1", "success"), ('q"u\\o\nte', "é—☃"),
                                    ("\x00\x1f", "𝄞")])
def test_stored_labels_are_exactly_what_json_dumps_wrote(labels: tuple[str, ...]) -> None:
    """The totals are keyed by the labels' text: rows written by earlier versions, with
    ``json.dumps``, must keep matching."""
    assert labels_text(labels) == json.dumps(list(labels))
    assert tuple(json.loads(labels_text(labels))) == labels


def test_processes_racing_to_create_one_history_all_succeed(tmp_path: Path) -> None:
    """Switching a new file to WAL needs it to itself, and SQLite answers "database is
    locked" at once there (no busy wait): racing creators failed in most trials."""
    import subprocess
    import sys
    import time

    # each process imports first, then waits for the same instant: they race for real
    code = ("import sys, time; from pathlib import Path; from attest_cli.metrics.history "
            "import HistoryDB; time.sleep(max(0.0, float(sys.argv[2]) - time.time())); "
            "HistoryDB(Path(sys.argv[1])).ensure()")
    for trial in range(3):
        path = tmp_path / f"h{trial}" / "history.db"
        at = str(time.time() + 1.0)
        procs = [subprocess.Popen([sys.executable, "-c", code, str(path), at],
                                  stderr=subprocess.PIPE, text=True) for _ in range(6)]
        errors = [p.communicate(timeout=60)[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * 6, errors
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert HistoryDB(path).runs() == []
