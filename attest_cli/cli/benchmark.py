"""``attest benchmark``: time pipelines and compare results."""

from __future__ import annotations

import typer

from attest_cli.cli.common import not_available

HELP = "Benchmark the pipeline and compare results with statistics."
app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)


@app.command("pipeline")
def pipeline(ctx: typer.Context) -> None:
    """Run the pipeline N times and report statistics."""
    not_available("attest benchmark pipeline", 9)


@app.command("compare")
def compare(ctx: typer.Context) -> None:
    """Compare two results with a significance test."""
    not_available("attest benchmark compare", 9)
