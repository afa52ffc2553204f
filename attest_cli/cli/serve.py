"""``attest serve``: the long-running exporter."""

from __future__ import annotations

import typer

from attest_cli.cli.common import not_available

HELP = "Serve /metrics and health endpoints derived from the run history."


def serve(ctx: typer.Context) -> None:
    not_available("attest serve", 6)
