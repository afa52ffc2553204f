"""What the history costs every run, whatever its size.

The schema is brought up to date once per file, not by every process that opens it: each
run opens the history twice (abandoned runs, then the recorder), and running the schema
script and the column checks each time was ~1 ms apiece. And a run checkpoints the WAL
once, at its end, not after each of its writes (four fsyncs each).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from attest_cli.metrics.history import HistoryDB
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
