"""``attest analyze``: render a profile, run report or benchmark result."""

from __future__ import annotations

import typer

from attest_cli.cli.common import not_available

HELP = "Render a CPU profile, memory capture, run report or benchmark result."


def analyze(ctx: typer.Context, file: str = typer.Argument(...)) -> None:
    not_available("attest analyze", 8)
