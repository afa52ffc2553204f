"""``attest monitoring``: the Grafana dashboard and Prometheus rules."""

from __future__ import annotations

import typer

from attest_cli.cli.common import not_available

HELP = "Generate the Grafana dashboard and the Prometheus alert rules."
app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)


@app.command("dashboard")
def dashboard(ctx: typer.Context) -> None:
    """Write the Grafana dashboard JSON."""
    not_available("attest monitoring dashboard", 6)


@app.command("alerts")
def alerts(ctx: typer.Context) -> None:
    """Write the Prometheus rule file."""
    not_available("attest monitoring alerts", 6)
