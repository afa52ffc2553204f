"""``attest cache``: inspect and maintain the step cache."""

from __future__ import annotations

import typer

from attest_cli.cli.common import not_available

HELP = "Inspect and maintain the step cache (stats, verify, clear, prune, explain)."
app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)


@app.command("stats")
def stats(ctx: typer.Context, fmt: str = typer.Option("table", "--format")) -> None:
    """Entries, bytes and hit rate per backend."""
    not_available("attest cache stats", 4)


@app.command("verify")
def verify(ctx: typer.Context, repair: bool = typer.Option(False, "--repair")) -> None:
    """Check every entry against its digests."""
    not_available("attest cache verify", 4)


@app.command("clear")
def clear(ctx: typer.Context, all_: bool = typer.Option(False, "--all")) -> None:
    """Delete cache entries."""
    not_available("attest cache clear", 4)


@app.command("prune")
def prune(ctx: typer.Context) -> None:
    """Apply retention and size limits now."""
    not_available("attest cache prune", 4)


@app.command("explain")
def explain(ctx: typer.Context, step: str = typer.Argument(...)) -> None:
    """Show a step's cache key components and what changed since the last stored entry."""
    not_available("attest cache explain", 4)
