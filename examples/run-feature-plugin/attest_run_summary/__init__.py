"""An attest run feature from outside attest: a JSON summary of every run.

Turned on by ``ATTEST_RUN_SUMMARY=<file>``: when the run finishes, the file holds the run's
id, pipeline, status and exit code, every step's status, and how many events of each kind
the feature saw. ``ATTEST_RUN_SUMMARY_BUDGET=<seconds>`` also fails the run (through
``run.fail``, the only way a feature changes a run's outcome) when a step took longer.

It imports only what a feature may: the run context's types (``attest_cli.runner.features``)
and the event types (``attest_cli.engine.events``).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from attest_cli.engine.events import Event, RunFinished, StepFinished

if TYPE_CHECKING:
    from attest_cli.engine.run_report import RunReport
    from attest_cli.runner.features import RunContext


class RunSummaryFeature:
    name = "run-summary"
    order = 900  # after attest's own features

    def attach(self, run: RunContext) -> None:
        target = run.ctx.environ.get("ATTEST_RUN_SUMMARY")
        if not target:
            return
        summary = _Summary(run.ctx.path(target))
        run.subscribe(summary)
        budget = run.ctx.environ.get("ATTEST_RUN_SUMMARY_BUDGET")
        if budget:
            limit = float(budget)

            def check_budget(report: RunReport) -> None:
                slow = [s.name for s in report.steps if s.wall_seconds > limit]
                if slow:
                    run.fail(f"run-summary: over the {limit:g}s budget: {', '.join(slow)}")

            run.before_finish(check_budget)


class _Summary:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: Counter[str] = Counter()
        self.steps: dict[str, str] = {}

    def __call__(self, event: Event) -> None:
        self.seen[type(event).__name__] += 1
        if isinstance(event, StepFinished):
            self.steps[event.result.name] = event.result.status
        elif isinstance(event, RunFinished):
            self._write(event.report)

    def _write(self, report: RunReport) -> None:
        doc = {"run_id": report.run_id, "pipeline": report.pipeline, "status": report.status,
               "exit_code": report.exit_code, "failures": list(report.failures),
               "steps": self.steps, "events": dict(sorted(self.seen.items()))}
        self.path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
