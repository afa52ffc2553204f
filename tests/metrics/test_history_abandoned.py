"""Runs whose process died without a word (``kill -9``, OOM killer, power cut) are marked
``abandoned``; disk full is one clear line and exit 1, the run recorded as failed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from attest_cli.metrics.history import HistoryDB
from tests.metrics.helpers import get, samples, start_attest, stop
from tests.support import attest, free_port, wait_for, wait_for_port, write_pipeline

HANGING = """
    name: app
    steps:
      work:
        run: '[ -z "$HANG" ] || { echo $$ > started; exec sleep 60; }'
        cache: false
"""


def history_json(project: Path, *args: str) -> list[dict]:
    proc = attest("history", "--format", "json", *args, cwd=project)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def killed_run(project: Path) -> str:
    """Start a run, ``kill -9`` it once its step runs; the run id it left behind."""
    proc = start_attest(project, "run", env={"HANG": "1"})
    try:
        started = project / "started"
        assert wait_for(lambda: started.exists() and started.read_text().strip() != "", 30), \
            stop(proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        stop(proc)
    with contextlib.suppress(ProcessLookupError):  # the orphaned step (it exec'd sleep)
        os.kill(int(started.read_text()), signal.SIGKILL)
    started.unlink()
    conn = sqlite3.connect(project / ".attest" / "history.db")
    try:
        rows = conn.execute("SELECT run_id, status FROM runs").fetchall()
    finally:
        conn.close()
    assert len(rows) == 1 and rows[0][1] == "running"  # what kill -9 leaves behind
    return str(rows[0][0])


def report_status(project: Path, run_id: str) -> str:
    data = json.loads((project / ".attest" / "runs" / f"{run_id}.json").read_text())
    return str(data["status"])


def test_a_killed_run_is_abandoned_in_history_and_its_report(project: Path) -> None:
    write_pipeline(project, HANGING)
    run_id = killed_run(project)
    assert report_status(project, run_id) == "running"

    (rec,) = history_json(project)
    assert rec["run_id"] == run_id
    assert rec["status"] == "abandoned"
    assert rec["exit_code"] is None
    assert report_status(project, run_id) == "abandoned"
    assert [r["run_id"] for r in history_json(project, "--failures-only")] == [run_id]
    table = attest("history", cwd=project).stdout
    assert "abandoned" in table

    # the dead run counts once as a failed execution in every exporter (status label stays
    # success|failure, as the seed binds)
    conn = sqlite3.connect(project / ".attest" / "history.db")
    try:
        (value,) = conn.execute(
            "SELECT value FROM series WHERE name = 'pipeline_executions_total' "
            "AND pipeline = 'app' AND labels = '[\"failure\"]'").fetchone()
    finally:
        conn.close()
    assert value == 1.0
    # looking again does not count it twice
    history_json(project)
    assert attest("run", cwd=project).returncode == 0
    textfile = project / "m.prom"
    assert attest("run", "--metrics-file", str(textfile), cwd=project).returncode == 0
    values = samples(textfile.read_text())
    assert values['attest_pipeline_executions_total{pipeline="app",status="failure"}'] == 1.0
    assert values['attest_pipeline_executions_total{pipeline="app",status="success"}'] == 2.0


def test_the_next_run_marks_a_dead_run_abandoned(project: Path) -> None:
    write_pipeline(project, HANGING)
    run_id = killed_run(project)
    assert attest("run", cwd=project).returncode == 0
    conn = sqlite3.connect(project / ".attest" / "history.db")
    try:
        status = dict(conn.execute("SELECT run_id, status FROM runs").fetchall())
    finally:
        conn.close()
    assert status[run_id] == "abandoned"
    assert report_status(project, run_id) == "abandoned"


def test_attest_serve_counts_a_dead_run_as_a_failed_execution(project: Path) -> None:
    port = free_port()
    write_pipeline(project, HANGING + f"    monitoring: {{prometheus: {{endpoint: ':{port}'}}}}\n")
    run_id = killed_run(project)
    proc = start_attest(project, "serve")
    key = 'attest_pipeline_executions_total{pipeline="app",status="failure"}'
    try:
        assert wait_for_port(port, 20), stop(proc)
        assert wait_for(lambda: samples(get(f"http://127.0.0.1:{port}/metrics")[1])
                        .get(key) == 1.0, 10)
    finally:
        _, err = stop(proc)
    assert f"run {run_id} was abandoned" in err
    assert report_status(project, run_id) == "abandoned"


def _running_row(db: HistoryDB, run_id: str, *, pid: int, host: str,
                 proc_start: str | None) -> None:
    with db.connect(write=True) as conn:
        conn.execute("INSERT INTO runs (run_id, pipeline, status, started_at, hostname, pid, "
                     "process_start) VALUES (?, 'app', 'running', ?, ?, ?, ?)",
                     (run_id, time.time(), host, pid, proc_start))


def test_only_runs_proven_dead_are_abandoned(tmp_path: Path) -> None:
    from attest_cli.procid import current

    db = HistoryDB(tmp_path / "h.db")
    db.ensure()
    me = current()
    assert me.start is not None
    host = socket.gethostname()
    here = me.start.rpartition(":")[0]  # "<boot id>/<pid namespace>"
    boot = here.split("/", 1)[0]
    gone = 2**22 + 17  # above pid_max: no such process
    _running_row(db, "alive", pid=me.pid, host=host, proc_start=me.start)
    _running_row(db, "pid-reused", pid=me.pid, host=host, proc_start=f"{here}:1")
    _running_row(db, "gone", pid=gone, host=host, proc_start=f"{here}:1")
    _running_row(db, "elsewhere", pid=gone, host="another-runner", proc_start=f"{here}:1")
    _running_row(db, "other-container", pid=gone, host=host,
                 proc_start=f"{boot}/pid:[1]:1")
    _running_row(db, "before-reboot", pid=me.pid, host=host,
                 proc_start="00000000-dead-beef-0000-000000000000/pid:[1]:1")
    assert sorted(db.mark_abandoned()) == ["before-reboot", "gone", "pid-reused"]
    status = {r.run_id: r.status for r in db.runs()}
    assert status == {"alive": "running", "pid-reused": "abandoned", "gone": "abandoned",
                      "elsewhere": "running", "other-container": "running",
                      "before-reboot": "abandoned"}
    assert db.mark_abandoned() == []


def test_an_old_history_file_gains_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE runs (
            run_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, status TEXT NOT NULL,
            exit_code INTEGER, started_at REAL NOT NULL, finished_at REAL,
            duration_seconds REAL, hostname TEXT, attest_version TEXT, pipeline_file TEXT,
            steps_total INTEGER NOT NULL DEFAULT 0, steps_success INTEGER NOT NULL DEFAULT 0,
            interrupted_by INTEGER);
        INSERT INTO runs (run_id, pipeline, status, started_at) VALUES ('r', 'app', 'running', 1);
    """)
    conn.close()
    db = HistoryDB(path)
    assert db.mark_abandoned() == []  # no pid recorded: not provably dead, left alone
    assert [r.status for r in db.runs()] == ["running"]


# -- disk full -----------------------------------------------------------------------------

@pytest.fixture
def small_fs(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A 1 MiB tmpfs (needs root); skipped where mounting is not allowed."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
            capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _filling_pipeline(project: Path, small_fs: Path, extra_steps: str = "") -> None:
    """Step ``fill`` fills the tiny state filesystem and prints (its log write hits ENOSPC)."""
    write_pipeline(project, f"""
        name: app
        steps:
          fill:
            run: >-
              head -c 4000000 /dev/zero > {small_fs}/filler 2>/dev/null;
              yes spam | head -c 300000
            cache: false
    """ + extra_steps)
    (project / ".attest").symlink_to(small_fs)


def test_disk_full_for_the_whole_run_is_one_line_exit_1(project: Path, small_fs: Path) -> None:
    _filling_pipeline(project, small_fs)
    proc = attest("run", cwd=project, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "internal error" not in proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("attest: error:")]
    assert len(errors) == 1 and "no space left on device" in errors[0], proc.stderr
    # nothing could be written at the end; once there is room again, the dead run is closed
    (small_fs / "filler").unlink()
    assert [r["status"] for r in history_json(project)] in (["failure"], ["abandoned"])


def test_disk_full_mid_run_fails_the_step_and_the_run_is_recorded(project: Path,
                                                                  small_fs: Path) -> None:
    # fill breaks on its own log; free makes room again before the run records its end
    _filling_pipeline(project, small_fs, f"""
          free:
            run: 'sleep 1.5; rm {small_fs}/filler'
            cache: false
    """)
    proc = attest("run", "-j", "2", cwd=project, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "internal error" not in proc.stderr
    assert "Traceback" not in proc.stderr
    (rec,) = history_json(project)
    assert rec["status"] == "failure"
    steps = {st["name"]: st for st in rec["steps"]}
    assert steps["free"]["status"] == "success"
    assert steps["fill"]["status"] == "failure"
    assert "no space left on device" in steps["fill"]["reason"]
    assert report_status(project, rec["run_id"]) == "failure"


def test_disk_full_before_the_run_starts_is_one_line_exit_1(project: Path,
                                                           small_fs: Path) -> None:
    write_pipeline(project, "name: app\nsteps:\n  a: {run: 'true', cache: false}\n")
    (project / ".attest").symlink_to(small_fs)
    assert attest("history", cwd=project).returncode == 0  # the history exists
    subprocess.run(["sh", "-c", f"head -c 4000000 /dev/zero > {small_fs}/filler"], check=False)
    proc = attest("run", cwd=project, timeout=60)
    assert "internal error" not in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 1, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("attest: error:")]
    assert len(errors) == 1 and "no space left on device" in errors[0], proc.stderr
