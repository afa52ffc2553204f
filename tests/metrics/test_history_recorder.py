"""HistoryRecorder fed run events directly, on a temporary SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from attest_cli.engine.events import (
    CacheChecked,
    RunFinished,
    RunStarted,
    StepFinished,
    VerificationFinished,
)
from attest_cli.engine.run_report import RunReport, StepResult
from attest_cli.metrics.history import HistoryDB, HistoryRecorder
from attest_cli.pipeline.model import Pipeline, Step

pytestmark = pytest.mark.unit  # in-process: the fast layer (make test-unit)

T0 = 1_700_000_000.0


def run_events(tmp_path: Path, run_id: str, status: str, *, hit: bool) -> list[object]:
    steps = {"build": Step(name="build", run="make")}
    pipeline = Pipeline(name="p", path=tmp_path / "attest.yaml", root=tmp_path, steps=steps)
    report = RunReport(run_id=run_id, pipeline="p", pipeline_file="attest.yaml",
                       started_at=T0, hostname="h")
    build = StepResult(name="build", command="make", status="cached" if hit else status,
                       exit_code=0 if status == "success" else 2, wall_seconds=1.5,
                       cache_hit=hit, cache_backend="local")
    finished = RunReport(run_id=run_id, pipeline="p", pipeline_file="attest.yaml",
                         started_at=T0, hostname="h", steps=[build], status=status,
                         finished_at=T0 + 2, exit_code=0 if status == "success" else 1)
    return [
        RunStarted(run_id=run_id, pipeline=pipeline, selected=("build",), parallel=1,
                   report=report, at=T0),
        CacheChecked(step="build", backend="local", hit=hit, key="k", reason=None,
                     duration=0.01, at=T0 + 0.01),
        StepFinished(run_id=run_id, result=build, at=T0 + 1.5),
        VerificationFinished(kind="receipt", ok=False, reason="hash_mismatch", duration=0.1,
                             at=T0 + 1.9),
        RunFinished(report=finished, at=T0 + 2),
    ]


@pytest.fixture
def db(tmp_path: Path) -> HistoryDB:
    return HistoryDB(tmp_path / "history.db")


def record(db: HistoryDB, events: list[object]) -> HistoryRecorder:
    recorder = HistoryRecorder(db)
    for event in events:
        recorder(event)  # type: ignore[arg-type]
    recorder.close()
    return recorder


def rows(db: HistoryDB, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db.path) as conn:
        return conn.execute(sql).fetchall()


def test_a_finished_run_is_one_row_with_its_steps_cache_and_verifications(
        db: HistoryDB, tmp_path: Path) -> None:
    recorder = record(db, run_events(tmp_path, "r1", "failure", hit=False))
    assert recorder.recorded
    assert rows(db, "SELECT run_id, pipeline, status, exit_code, started_at, finished_at, "
                    "steps_total, steps_success FROM runs") == [
        ("r1", "p", "failure", 1, T0, T0 + 2, 1, 0)]
    assert rows(db, "SELECT name, status, exit_code, wall_seconds, cache_hit FROM steps") == [
        ("build", "failure", 2, 1.5, 0)]
    assert rows(db, "SELECT backend, hits, misses FROM cache_lookups") == [("local", 0, 1)]
    assert rows(db, "SELECT run_id, kind, ok, reason FROM verifications") == [
        ("r1", "receipt", 0, "hash_mismatch")]
    (run,) = db.runs()
    assert (run.run_id, run.status, run.cache_lookups, run.cache_hits) == ("r1", "failure", 1, 0)


def test_totals_accumulate_across_runs(db: HistoryDB, tmp_path: Path) -> None:
    record(db, run_events(tmp_path, "r1", "failure", hit=False))
    record(db, run_events(tmp_path, "r2", "success", hit=True))
    totals = db.snapshot("p").counters
    assert totals[("pipeline_executions_total", "p", ("failure",))] == 1
    assert totals[("pipeline_executions_total", "p", ("success",))] == 1
    assert totals[("cache_hits_total", "p", ("local",))] == 1
    assert totals[("cache_misses_total", "p", ("local",))] == 1
    assert totals[("verifications_total", "p", ("receipt",))] == 2
    assert totals[("verification_failures_total", "p", ("hash_mismatch",))] == 2
    assert totals[("step_duration_seconds_count", "p", ("build", "failure"))] == 1
    assert ("step_duration_seconds_count", "p", ("build", "cached")) not in totals
    gauges = db.snapshot("p").gauges
    assert gauges[("pipeline_last_success_timestamp_seconds", "p", ())] == T0 + 2
    assert sorted(r.run_id for r in db.runs()) == ["r1", "r2"]


def test_a_run_without_run_finished_stays_running_for_the_dead_run_check(
        db: HistoryDB, tmp_path: Path) -> None:
    """The recorder never decides a status (the run service does, once); a run whose
    process died without RunFinished stays ``running`` until it is proven dead and marked
    ``abandoned`` (runner/records.py)."""
    events = run_events(tmp_path, "r1", "success", hit=False)[:-1]  # it crashed
    record(db, events)
    assert rows(db, "SELECT run_id, status FROM runs") == [("r1", "running")]
    assert ("pipeline_executions_total", "p", ("failure",)) not in db.snapshot("p").counters


def test_a_started_run_is_visible_as_running_before_it_ends(db: HistoryDB,
                                                           tmp_path: Path) -> None:
    recorder = HistoryRecorder(db)
    recorder(run_events(tmp_path, "r1", "success", hit=False)[0])  # type: ignore[arg-type]
    assert rows(db, "SELECT run_id, status FROM runs") == [("r1", "running")]


def test_steps_are_kept_for_the_newest_keep_runs_runs_and_the_runs_themselves_stay(
        tmp_path: Path) -> None:
    """Step rows are nearly all of the history (one per step per run): past
    ``history.keep_runs`` runs they go, as the runs' reports and logs do; the run rows,
    their lookups and the totals stay until ``history.retention_days``."""
    import time

    from attest_cli.metrics.tally import Tally

    now = time.time() - 60
    history = HistoryDB(tmp_path / "history.db", retention_days=90, keep_runs=2)
    for i in range(5):
        report = RunReport(run_id=f"r{i}", pipeline="p", pipeline_file="attest.yaml",
                           started_at=now + i, finished_at=now + i + 0.5, status="success")
        report.steps = [StepResult(name=f"s{k}", command="true", status="success")
                        for k in range(3)]
        history.record_finished(report, {"local": {"hits": 1, "misses": 2}}, [], Tally())
    records = history.runs(limit=10)
    assert [r.run_id for r in records] == ["r4", "r3", "r2", "r1", "r0"]
    assert [len(r.steps) for r in records] == [3, 3, 0, 0, 0]
    assert all(r.steps_total == 3 for r in records)  # the run's own row keeps its counts
    assert all(r.cache == {"local": {"hits": 1, "misses": 2}} for r in records)
    everything = HistoryDB(tmp_path / "all.db", retention_days=90)  # keep_runs 0: keep all
    for i in range(3):
        report = RunReport(run_id=f"r{i}", pipeline="p", pipeline_file="attest.yaml",
                           started_at=now + i, status="success")
        report.steps = [StepResult(name="s", command="true", status="success")]
        everything.record_finished(report, {}, [], Tally())
    assert [len(r.steps) for r in everything.runs()] == [1, 1, 1]
