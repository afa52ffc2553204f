"""``attest history``: past runs from the run history."""

from __future__ import annotations

import typer

from attest_cli.cli.common import not_available

HELP = "List past runs from the run history."


def history(ctx: typer.Context) -> None:
    not_available("attest history", 6)
