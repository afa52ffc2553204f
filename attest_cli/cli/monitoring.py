"""``attest monitoring``: the Grafana dashboard and Prometheus rules."""

from __future__ import annotations

from pathlib import Path

import typer

from attest_cli.cli.common import app_context

HELP = "Generate the Grafana dashboard and the Prometheus alert rules."
app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)


def _emit(text: str, output: Path | None, ctx: typer.Context) -> None:
    app = app_context(ctx)
    if output is None:
        app.stdout.write(text)
        return
    from attest_cli.atomic import write_atomic

    path = write_atomic(app.path(output), text)
    app.stderr.write(f"wrote {path}\n")


def _namespace(ctx: typer.Context) -> str:
    from attest_cli.metrics.exposition import namespace

    app = app_context(ctx)
    return namespace(app.settings(pipeline_doc=app.pipeline_doc()))


@app.command("dashboard")
def dashboard(
    ctx: typer.Context,
    output: Path | None = typer.Option(None, "--output", "-o",
                                       help="Write here instead of stdout."),
) -> None:
    """Write the Grafana dashboard JSON (import it in Grafana 10+)."""
    import json

    from attest_cli.metrics.dashboards import dashboard as build

    _emit(json.dumps(build(_namespace(ctx)), indent=2) + "\n", output, ctx)


@app.command("alerts")
def alerts(
    ctx: typer.Context,
    output: Path | None = typer.Option(None, "--output", "-o",
                                       help="Write here instead of stdout."),
) -> None:
    """Write the Prometheus rule file (recording rules and alerts)."""
    from attest_cli.metrics.alerts import render

    _emit(render(_namespace(ctx)), output, ctx)
