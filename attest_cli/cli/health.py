"""``attest health``: run the readiness checks once."""

from __future__ import annotations

import typer

from attest_cli.cli.common import not_available

HELP = "Run the health checks once; exit 0 when healthy, 1 when not."


def health(ctx: typer.Context) -> None:
    not_available("attest health", 6)
