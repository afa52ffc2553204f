"""``attest history``: past runs from the run history."""

from __future__ import annotations

from enum import Enum

import typer

from attest_cli.cli.common import app_context

HELP = "List past runs from the run history."


class Format(str, Enum):
    table = "table"
    json = "json"


def history(
    ctx: typer.Context,
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many runs, newest first."),
    pipeline: str | None = typer.Option(None, "--pipeline", help="Only runs of this pipeline."),
    failures_only: bool = typer.Option(False, "--failures-only",
                                       help="Only failed and interrupted runs."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table or json."),
) -> None:
    from attest_cli.metrics.history import open_history
    from attest_cli.render.registry import HISTORY
    from attest_cli.runner.records import abandon_dead_runs

    app = app_context(ctx)
    settings = app.settings(pipeline_doc=app.pipeline_doc())
    db = open_history(app, settings)
    abandon_dead_runs(app, settings)
    records = db.runs(limit=limit, pipeline=pipeline, failures_only=failures_only)
    app.stdout.write(HISTORY.render(fmt.value, records))
