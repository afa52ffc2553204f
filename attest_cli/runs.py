"""Reading back the run reports under ``.attest/runs/``, and closing those of dead runs."""

from __future__ import annotations

import logging
from pathlib import Path

from attest_cli.atomic import write_atomic
from attest_cli.config.layers import Settings
from attest_cli.context import AppContext
from attest_cli.engine.run_report import RunReport
from attest_cli.errors import InputError

log = logging.getLogger("attest.history")


def report_paths(runs_dir: Path) -> list[Path]:
    """Run reports, newest first (run ids sort by time)."""
    if not runs_dir.is_dir():
        return []
    return sorted(runs_dir.glob("*.json"), reverse=True)


def latest(runs_dir: Path, pipeline: str | None = None,
           status: tuple[str, ...] = ("success", "failure")) -> RunReport | None:
    for path in report_paths(runs_dir):
        try:
            report = RunReport.load(path)
        except InputError:
            continue
        if (pipeline is None or report.pipeline == pipeline) and report.status in status:
            return report
    return None


def last_durations(runs_dir: Path, pipeline: str) -> dict[str, float]:
    """Step wall times of the last finished run of ``pipeline`` (executed steps only)."""
    report = latest(runs_dir, pipeline)
    if report is None:
        return {}
    return {s.name: s.wall_seconds for s in report.steps if s.status in ("success", "failure")}


def abandon_dead_runs(ctx: AppContext, settings: Settings) -> list[str]:
    """Mark ``abandoned`` the runs whose process died without recording the end, in the
    history and in their run reports. Never fails the caller: a history that cannot be
    read or written is a warning here (the command's own use of it reports the error)."""
    import sqlite3

    from attest_cli.metrics.history import HistoryDB

    db = HistoryDB.from_settings(ctx, settings)
    if not db.path.exists():
        return []
    try:
        marked = db.mark_abandoned()
    except (sqlite3.Error, OSError) as exc:
        log.warning("run history: could not look for abandoned runs in %s: %s", db.path, exc)
        return []
    for run_id in marked:
        log.warning("run %s was abandoned: its process on this host is gone", run_id)
        _abandon_report(ctx.state_dir / "runs" / f"{run_id}.json")
    return marked


def _abandon_report(path: Path) -> None:
    try:
        report = RunReport.load(path)
        if report.status == "running":
            report.status = "abandoned"
            write_atomic(path, report.to_json())
    except (InputError, OSError) as exc:
        log.warning("run report %s: could not mark it abandoned: %s", path, exc)
