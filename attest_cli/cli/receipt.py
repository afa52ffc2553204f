"""``attest receipt``: receipts in other formats (in-toto)."""

from __future__ import annotations

import typer

from attest_cli.cli.common import not_available

HELP = "Export receipts to interoperable formats (in-toto)."
app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)


@app.command("export")
def export(ctx: typer.Context, receipt: str = typer.Argument(...)) -> None:
    """Write a receipt as an in-toto Statement in a DSSE envelope."""
    not_available("attest receipt export", 5)
