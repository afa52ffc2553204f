"""The per-step answer of every report: slowest steps, critical path, resources by step."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from attest_cli.engine.run_report import RunReport
from attest_cli.pipeline.graph import critical_path
from attest_cli.pipeline.model import Pipeline, Step


@dataclass
class StepRow:
    name: str
    status: str
    wall_seconds: float
    share: float  # of the summed step wall time
    cpu_user_seconds: float
    cpu_system_seconds: float
    max_rss_bytes: int
    slot: int | None
    critical: bool
    cache_hit: bool
    start_offset: float | None  # seconds after the run started


@dataclass
class StepsSummary:
    run_id: str
    pipeline: str
    status: str
    duration_seconds: float
    parallel: int
    steps: list[StepRow]  # slowest first
    critical_path: list[str]
    critical_seconds: float
    critical_share: float  # of the run's wall time
    step_wall_total: float
    before_first_step: float  # attest's own time: run start to the first step's start
    after_last_step: float  # and the last step's end to the run's end (reports, receipts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(report: RunReport) -> StepsSummary:
    names = {s.name for s in report.steps}
    durations = {s.name: s.wall_seconds for s in report.steps}
    dag = Pipeline(name=report.pipeline, path=Path(report.pipeline_file or "."), root=Path("."),
                   steps={s.name: Step(name=s.name, run=s.command,
                                       needs=tuple(n for n in s.needs if n in names))
                          for s in report.steps})
    path, crit_total = critical_path(dag, durations) if report.steps else ([], 0.0)
    total = sum(durations.values())
    crit = set(path)
    rows = [StepRow(name=s.name, status=s.status, wall_seconds=round(s.wall_seconds, 6),
                    share=round(s.wall_seconds / total, 4) if total else 0.0,
                    cpu_user_seconds=round(s.cpu_user_seconds, 6),
                    cpu_system_seconds=round(s.cpu_system_seconds, 6),
                    max_rss_bytes=s.max_rss_bytes, slot=s.slot, critical=s.name in crit,
                    cache_hit=s.cache_hit,
                    start_offset=(round(s.started_at - report.started_at, 6)
                                  if s.started_at else None))
            for s in report.steps]
    rows.sort(key=lambda r: (-r.wall_seconds, r.name))
    duration = report.duration_seconds
    starts = [s.started_at for s in report.steps if s.started_at]
    ends = [s.finished_at or s.started_at for s in report.steps if s.started_at]
    end = report.finished_at or report.started_at
    before = max(0.0, min(starts) - report.started_at) if starts else duration
    after = max(0.0, end - max(e for e in ends if e is not None)) if ends else 0.0
    return StepsSummary(run_id=report.run_id, pipeline=report.pipeline, status=report.status,
                        duration_seconds=round(duration, 6), parallel=report.parallel,
                        steps=rows, critical_path=path, critical_seconds=round(crit_total, 6),
                        critical_share=round(min(crit_total / duration, 1.0), 4)
                        if duration else 0.0, step_wall_total=round(total, 6),
                        before_first_step=round(before, 6), after_last_step=round(after, 6))
