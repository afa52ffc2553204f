"""``attest health``: run the readiness checks once."""

from __future__ import annotations

from enum import Enum

import typer

from attest_cli.cli.common import app_context

HELP = "Run the health checks once; exit 0 when healthy, 1 when not."


class Format(str, Enum):
    text = "text"
    json = "json"


def health(
    ctx: typer.Context,
    fmt: Format = typer.Option(Format.text, "--format", "-f", help="text or json."),
) -> None:
    from attest_cli.health.checks import Readiness
    from attest_cli.render.registry import HEALTH

    app = app_context(ctx)
    settings = app.settings(pipeline_doc=app.pipeline_doc())
    readiness = Readiness(app, settings)
    try:
        report = readiness.evaluate()
    finally:
        readiness.close()
    app.stdout.write(HEALTH.render(fmt.value, report))
    if not report.ok:
        raise typer.Exit(1)
