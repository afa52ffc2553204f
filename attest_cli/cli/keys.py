"""``attest keys``: Ed25519 signing keys and the trust store."""

from __future__ import annotations

import typer

from attest_cli.cli.common import not_available

HELP = "Manage Ed25519 signing keys and trusted public keys."
app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)


@app.command("generate")
def generate(ctx: typer.Context) -> None:
    """Create a key pair (private key 0600)."""
    not_available("attest keys generate", 5)


@app.command("list")
def list_keys(ctx: typer.Context) -> None:
    """List keys."""
    not_available("attest keys list", 5)


@app.command("trust")
def trust(ctx: typer.Context, pubkey: str = typer.Argument(...)) -> None:
    """Add a public key to the trust store."""
    not_available("attest keys trust", 5)


@app.command("export")
def export(ctx: typer.Context) -> None:
    """Print the public key."""
    not_available("attest keys export", 5)
