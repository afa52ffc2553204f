"""``--format chrome-trace`` (run report): the run as a Trace Event timeline.

Open it in https://ui.perfetto.dev or chrome://tracing. One process (the pipeline), one
track per parallel slot, one complete ("X") event per step carrying its status and
resource figures; a first track shows the run itself.
"""

from __future__ import annotations

import json
from typing import Any

from attest_cli.analysis.subject import Subject
from attest_cli.engine.run_report import RunReport

PID = 1
RUN_TID = 0


def trace_events(report: RunReport) -> dict[str, Any]:
    origin = report.started_at

    def us(t: float) -> float:
        return round((t - origin) * 1e6, 3)

    events: list[dict[str, Any]] = [
        {"name": "process_name", "ph": "M", "pid": PID, "tid": RUN_TID,
         "args": {"name": f"attest: {report.pipeline}"}},
        {"name": "thread_name", "ph": "M", "pid": PID, "tid": RUN_TID, "args": {"name": "run"}},
        {"name": "thread_sort_index", "ph": "M", "pid": PID, "tid": RUN_TID,
         "args": {"sort_index": -1}},
        {"name": report.pipeline, "cat": "run", "ph": "X", "pid": PID, "tid": RUN_TID,
         "ts": 0.0, "dur": round(report.duration_seconds * 1e6, 3),
         "args": {"run_id": report.run_id, "status": report.status,
                  "exit_code": report.exit_code, "parallel": report.parallel}},
    ]
    slots = sorted({s.slot for s in report.steps if s.slot is not None})
    for slot in slots:
        events.append({"name": "thread_name", "ph": "M", "pid": PID, "tid": slot + 1,
                       "args": {"name": f"slot {slot}"}})
        events.append({"name": "thread_sort_index", "ph": "M", "pid": PID, "tid": slot + 1,
                       "args": {"sort_index": slot}})
    for s in report.steps:
        args = {"status": s.status, "exit_code": s.exit_code, "command": s.command,
                "cpu_user_seconds": s.cpu_user_seconds,
                "cpu_system_seconds": s.cpu_system_seconds, "max_rss_bytes": s.max_rss_bytes,
                "cache_hit": s.cache_hit, "needs": list(s.needs)}
        if s.reason:
            args["reason"] = s.reason
        if s.started_at is None or s.slot is None:  # never started (skipped)
            events.append({"name": s.name, "cat": "step", "ph": "i", "s": "t", "pid": PID,
                           "tid": RUN_TID, "ts": us(report.finished_at or origin),
                           "args": args})
            continue
        events.append({"name": s.name, "cat": "step", "ph": "X", "pid": PID,
                       "tid": s.slot + 1, "ts": us(s.started_at),
                       "dur": round(s.wall_seconds * 1e6, 3), "args": args})
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"run_id": report.run_id, "pipeline": report.pipeline,
                          "attest_version": report.attest_version}}


def render(subject: Subject) -> str:
    assert subject.run is not None
    return json.dumps(trace_events(subject.run), indent=1) + "\n"

