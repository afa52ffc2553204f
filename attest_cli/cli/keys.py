"""``attest keys``: Ed25519 signing keys and the trust store."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from attest_cli.cli.common import app_context, configure_logging, print_json

if TYPE_CHECKING:
    from attest_cli.config.layers import Settings
    from attest_cli.context import AppContext
    from attest_cli.yamlfile import LocatedYAML

HELP = "Manage Ed25519 signing keys and trusted public keys."
app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)


def _settings(ctx: typer.Context) -> tuple[AppContext, Settings]:
    app_ctx = app_context(ctx)
    configure_logging(app_ctx)
    return app_ctx, app_ctx.settings(pipeline_doc=_pipeline_doc(app_ctx))


def _pipeline_doc(app_ctx: AppContext) -> LocatedYAML | None:
    from attest_cli.errors import InputError

    try:
        return app_ctx.pipeline_doc()
    except InputError:
        return None  # keys do not depend on the pipeline; a broken one is reported elsewhere



class ListFormat(StrEnum):
    table = "table"
    json = "json"


@app.command("generate")
def generate(
    ctx: typer.Context,
    output: Path | None = typer.Option(None, "--output", "-o", help="Directory for private.key "
                                       "and public.key [default: the directory of signing.key]."),
    force: bool = typer.Option(False, "--force", help="Replace an existing key pair."),
) -> None:
    """Create a key pair (private key 0600; it is never printed)."""
    from attest_cli.attestation import keys

    app_ctx, settings = _settings(ctx)
    directory = app_ctx.path(output) if output else app_ctx.path(settings["signing.key"]).parent
    made = keys.generate(directory, force=force)
    app_ctx.stdout.write(f"private key: {app_ctx.display(made.private)} (mode 0600, keep it "
                         f"secret)\npublic key:  {app_ctx.display(made.public)}\n"
                         f"             {keys.public_text(made.public_key)}\n")


@app.command("list")
def list_keys(
    ctx: typer.Context,
    trusted: bool = typer.Option(False, "--trusted", help="Only the trusted public keys."),
    fmt: ListFormat = typer.Option(ListFormat.table, "--format", "-f", help="table or json."),
) -> None:
    """List the project's own key and the trusted public keys."""
    from attest_cli.attestation import keys

    app_ctx, settings = _settings(ctx)
    found = [] if trusted else [k for k in [keys.own_key(app_ctx.path(settings["signing.key"]))]
                                if k is not None]
    found += keys.trusted_keys(app_ctx.state_dir, list(settings["signing.trusted_keys"]),
                               app_ctx.workdir)
    if fmt is ListFormat.json:
        print_json(app_ctx, [{"origin": k.origin, "fingerprint": k.fingerprint,
                              "public_key": k.text, "source": str(k.source)} for k in found])
        return
    if not found:
        app_ctx.stdout.write("no keys (create one with 'attest keys generate')\n"
                             if not trusted else
                             "no trusted keys (add one with 'attest keys trust FILE')\n")
        return
    for k in found:
        app_ctx.stdout.write(f"{k.origin:<8} {k.fingerprint}  {k.text}  {k.source}\n")


@app.command("trust")
def trust(ctx: typer.Context, pubkey: str = typer.Argument(..., metavar="PUBKEY_FILE",
                                                          help="A public key file (PEM or "
                                                          "'ed25519:<hex>'), or the key text.")
          ) -> None:
    """Add a public key to the trust store (.attest/keys/trusted/)."""
    from attest_cli.attestation import keys

    app_ctx, _ = _settings(ctx)
    path = app_ctx.path(pubkey)
    if not path.exists() and pubkey.startswith(keys.KEY_PREFIX):
        raw = keys.parse_public_text(pubkey, source="PUBKEY")
    else:
        raw = keys.load_public_key(path)
    stored, new = keys.trust(app_ctx.state_dir, raw)
    state = "trusted" if new else "already trusted"
    app_ctx.stdout.write(f"{state}: {keys.fingerprint(raw)} {keys.public_text(raw)} "
                     f"({app_ctx.display(stored)})\n")


@app.command("export")
def export(
    ctx: typer.Context,
    fmt: str = typer.Option("pem", "--format", "-f", help="pem, hex ('ed25519:<hex>') or "
                            "sslib (securesystemslib key JSON with its keyid)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write here instead of "
                                       "stdout."),
) -> None:
    """Print the public key of signing.key (never the private key)."""
    from attest_cli.atomic import write_atomic
    from attest_cli.attestation import keys
    from attest_cli.errors import UsageError

    if fmt not in ("pem", "hex", "sslib"):
        raise UsageError(f"--format {fmt}: expected pem, hex or sslib")
    app_ctx, settings = _settings(ctx)
    own = keys.own_key(app_ctx.path(settings["signing.key"]))
    if own is None:
        raise UsageError(f"no signing key at {settings['signing.key']}; create one with "
                         "'attest keys generate'")
    if fmt == "sslib":
        import json

        text = json.dumps({"keyid": keys.dsse_keyid(own.raw), **keys.sslib_key(own.raw)},
                          indent=2) + "\n"
    else:
        text = keys.public_pem(own.raw) if fmt == "pem" else own.text + "\n"
    if output is not None:
        write_atomic(app_ctx.path(output), text)
    else:
        app_ctx.stdout.write(text)
