"""``attest verify``: check receipts' signatures, hashes, expiry and policies."""

from __future__ import annotations

import typer

from attest_cli.cli.common import not_available

HELP = "Verify signed receipts against signatures, the workspace and policies."


def verify(ctx: typer.Context, receipts: list[str] = typer.Argument(...)) -> None:
    not_available("attest verify", 5)
