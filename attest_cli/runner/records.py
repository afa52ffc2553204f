"""Reading back the run reports under ``.attest/runs/``, and closing those of dead runs."""

from __future__ import annotations

import logging
from collections.abc import Iterable
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


# How many recorded run reports ``last_durations`` reads at most: enough to reach past a long
# streak of fully cached runs, bounded so that `pipeline show` stays quick.
DURATION_LOOKBACK = 50


def last_durations(runs_dir: Path, pipeline: str, steps: Iterable[str] | None = None,
                   lookback: int = DURATION_LOOKBACK) -> dict[str, float]:
    """Each step's wall time in the newest run that actually executed it.

    A cached step's recorded time is the cache lookup, not the work: weighing the critical
    path by it (or giving up after a fully cached run) would hide which chain is slow. So walk
    back through the newest ``lookback`` reports of ``pipeline`` and take, per step, the
    first one in which it ran (success or failure). Stops early once every step in ``steps``
    is known.
    """
    wanted = set(steps) if steps is not None else None
    out: dict[str, float] = {}
    for path in report_paths(runs_dir)[:lookback]:
        try:
            report = RunReport.load(path)
        except InputError:
            continue
        if report.pipeline != pipeline:
            continue
        for s in report.steps:
            if s.status in ("success", "failure") and s.name not in out:
                out[s.name] = s.wall_seconds
        if wanted is not None and wanted <= out.keys():
            break
    return out if wanted is None else {k: v for k, v in out.items() if k in wanted}


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
