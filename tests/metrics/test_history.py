"""The run history: every run recorded (failed, interrupted, concurrent), ``attest history``."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

from attest_cli.config.layers import defaults
from attest_cli.context import AppContext
from attest_cli.engine.events import EventBus, VerificationFinished
from attest_cli.metrics.history import (
    HistoryDB,
    attach_standalone,
)
from attest_cli.metrics.tally import Tally, account
from tests.metrics.helpers import interrupted_run, start_attest
from tests.support import attest, write_pipeline


def runs(project: Path, *args: str) -> list[dict]:
    proc = attest("history", "--format", "json", *args, cwd=project)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_success_failure_and_interrupted_runs_are_all_recorded(project: Path) -> None:
    write_pipeline(project, """
        name: app
        steps:
          prepare: {run: 'echo ok', cache: false}
          work:
            run: 'test -z "$FAIL" && { [ -z "$HANG" ] || { touch started; sleep 60; }; }'
            needs: [prepare]
            cache: false
    """)
    assert attest("run", cwd=project).returncode == 0
    assert attest("run", cwd=project, env={"FAIL": "1"}).returncode == 1
    assert interrupted_run(project, {"HANG": "1"}) == 130

    recorded = runs(project)
    assert [r["status"] for r in recorded] == ["interrupted", "failure", "success"]
    assert [r["exit_code"] for r in recorded] == [130, 1, 0]
    interrupted, failed, ok = recorded
    assert [s["name"] for s in ok["steps"]] == ["prepare", "work"]
    assert all(s["status"] == "success" for s in ok["steps"])
    assert {s["name"]: s["status"] for s in failed["steps"]} == {"prepare": "success",
                                                                "work": "failure"}
    assert failed["steps"][1]["reason"] == "exit code 1"
    assert interrupted["steps"][1]["status"] == "failure"
    assert interrupted["finished_at"] >= interrupted["started_at"]
    assert ok["steps_success"] == ok["steps_total"] == 2

    assert [r["status"] for r in runs(project, "--failures-only")] == ["interrupted", "failure"]
    assert len(runs(project, "--limit", "1")) == 1
    assert runs(project, "--pipeline", "other") == []

    table = attest("history", cwd=project).stdout.splitlines()
    assert table[0].split()[:3] == ["RUN", "ID", "PIPELINE"]
    assert [line.split()[2] for line in table[1:]] == ["interrupted", "failure", "success"]


def test_cache_lookups_are_recorded_per_backend(project: Path) -> None:
    write_pipeline(project, """
        name: app
        steps:
          build: {run: 'cp in.txt out.txt', inputs: [in.txt], outputs: [out.txt]}
    """)
    (project / "in.txt").write_text("1")
    for _ in range(2):
        assert attest("run", cwd=project).returncode == 0
    newest, oldest = runs(project)
    seen = [(newest["cache"], newest["steps"][0]["status"]),
            (oldest["cache"], oldest["steps"][0]["status"])]
    for cache, status in seen:
        # whatever the cache reported, one lookup per run, matching the step's outcome
        if cache:
            (backend, counts), = cache.items()
            assert backend == "local"
            assert counts == ({"hits": 1, "misses": 0} if status == "cached"
                              else {"hits": 0, "misses": 1})


def test_concurrent_runs_in_one_project_are_all_recorded(project: Path) -> None:
    write_pipeline(project, """
        name: app
        steps:
          a: {run: 'sleep 0.2', cache: false}
          b: {run: 'sleep 0.1', cache: false}
    """)
    procs = [start_attest(project, "run") for _ in range(4)]
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    recorded = runs(project)
    assert len(recorded) == 4 and len({r["run_id"] for r in recorded}) == 4
    assert all(len(r["steps"]) == 2 for r in recorded)
    db = project / ".attest" / "history.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        total = conn.execute("SELECT value FROM series WHERE name = "
                             "'pipeline_executions_total'").fetchall()
    assert sum(v for (v,) in total) == 4


def test_retention_deletes_old_runs_but_never_lowers_counters(project: Path) -> None:
    write_pipeline(project, "name: app\nsteps:\n  a: {run: 'true', cache: false}\n")
    assert attest("run", cwd=project).returncode == 0
    db = project / ".attest" / "history.db"
    with sqlite3.connect(db) as conn:  # make that run 10 days old
        conn.execute("UPDATE runs SET started_at = started_at - 864000")
    env = {"ATTEST_HISTORY__RETENTION_DAYS": "7"}
    assert attest("run", "--metrics-file", "m.prom", cwd=project, env=env).returncode == 0
    assert len(runs(project)) == 1
    assert ('attest_pipeline_executions_total{pipeline="app",status="success"} 2.0'
            in (project / "m.prom").read_text())


def test_unusable_history_warns_and_the_run_still_succeeds(project: Path) -> None:
    write_pipeline(project, "name: app\nsteps:\n  a: {run: 'true', cache: false}\n")
    (project / "blocker").write_text("not a directory")
    env = {"ATTEST_HISTORY__PATH": "blocker/history.db"}
    proc = attest("run", "--log-format", "text", cwd=project, env=env)
    assert proc.returncode == 0
    assert "run history" in proc.stderr and "WARN" in proc.stderr
    shown = attest("history", cwd=project, env=env)
    assert shown.returncode == 2
    assert shown.stderr.count("\n") == 1 and "history.path" in shown.stderr


def test_standalone_verifications_and_unfinished_runs_are_recorded(tmp_path: Path) -> None:
    ctx = AppContext(workdir=tmp_path, environ={})
    settings = defaults()
    bus = EventBus()
    standalone = attach_standalone(bus, ctx, settings)
    bus.publish(VerificationFinished(kind="signature", ok=True, reason=None, duration=0.02))
    bus.publish(VerificationFinished(kind="policy", ok=False, reason="policy_violation",
                                     duration=0.5))
    bus.publish(VerificationFinished(kind="receipt", ok=False,
                                     reason="digest of /home/x/file differs", duration=0.1))
    db = HistoryDB.from_settings(ctx, settings)
    # buffered: written in one transaction when the command closes the recorder
    assert db.snapshot().counters == {}
    standalone.close()
    standalone.close()  # idempotent: nothing is written twice
    snap = db.snapshot()
    assert snap.counters[("verifications_total", "", ("signature",))] == 1
    assert snap.counters[("verification_failures_total", "", ("policy_violation",))] == 1
    # free text never becomes a label value (one series per message would be unbounded)
    assert snap.counters[("verification_failures_total", "", ("other",))] == 1
    assert snap.counters[("verification_duration_seconds_count", "", ("policy",))] == 1

    # A run that ends by an internal error is still recorded: the run service publishes
    # RunFinished (failure) for it (tests/test_runner.py::test_a_run_that_raises_...).


def test_tally_and_history_agree_after_many_writers(tmp_path: Path) -> None:
    """Counters are added in SQL, so interleaved writers never lose an increment."""
    db = HistoryDB(tmp_path / "h.db")
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from attest_cli.metrics.history import HistoryDB\n"
        "from attest_cli.metrics.tally import Tally\n"
        "db = HistoryDB(Path(sys.argv[1]))\n"
        "for _ in range(50):\n"
        "    t = Tally(); t.inc('cache_hits_total', 'p', ('local',))\n"
        "    db.record_verifications(None, 'p', [], t)\n"
    )
    import sys

    procs = [subprocess.Popen([sys.executable, "-c", script, str(db.path)]) for _ in range(4)]
    assert [p.wait(120) for p in procs] == [0, 0, 0, 0]
    assert db.snapshot().counters[("cache_hits_total", "p", ("local",))] == 200
    expected = Tally()
    account(expected, VerificationFinished(kind="signature", ok=True, reason=None,
                                           duration=0.0), "p")
    assert expected.counters[("verifications_total", "p", ("signature",))] == 1
