"""Reading back the run reports under ``.attest/runs/``."""

from __future__ import annotations

from pathlib import Path

from attest_cli.engine.report import RunReport
from attest_cli.errors import InputError


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
