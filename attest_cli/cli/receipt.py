"""``attest receipt``: receipts in other formats (in-toto)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import typer

from attest_cli.cli.common import app_context, configure_logging

HELP = "Export receipts to interoperable formats (in-toto)."
app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)


class ExportFormat(StrEnum):
    in_toto = "in-toto"


class Predicate(StrEnum):
    attest = "attest"
    slsa = "slsa-provenance-v1"


@app.command("export")
def export(
    ctx: typer.Context,
    receipt: Path = typer.Argument(..., metavar="RECEIPT", help="A signed receipt file."),
    fmt: ExportFormat = typer.Option(ExportFormat.in_toto, "--format", "-f",
                                     help="in-toto: a Statement v1 in a DSSE envelope."),
    predicate: Predicate = typer.Option(Predicate.attest, "--predicate",
                                        help="attest: the receipt itself "
                                        "(https://attest.dev/receipt/v1); slsa-provenance-v1: "
                                        "SLSA provenance v1 (https://slsa.dev/provenance/v1)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write here instead of "
                                       "stdout."),
) -> None:
    """Write a receipt as an in-toto Statement in a DSSE envelope, signed by signing.key.

    The envelope verifies with securesystemslib's Envelope.verify and the key from
    'attest keys export' (its keyid is securesystemslib's default id of that key)."""
    from attest_cli.atomic import write_atomic
    from attest_cli.attestation.intoto import envelope
    from attest_cli.attestation.keys import load_private_key
    from attest_cli.attestation.receipt import load
    from attest_cli.errors import InputError

    app = app_context(ctx)
    configure_logging(app)
    try:
        doc = app.pipeline_doc()
    except InputError:
        doc = None
    settings = app.settings(pipeline_doc=doc)
    loaded = load(app.path(receipt), label=str(receipt))
    if loaded.form != "receipt":
        raise InputError("already an in-toto envelope", path=str(receipt))
    key = load_private_key(app.path(settings["signing.key"]))
    text = json.dumps(envelope(loaded, app.workdir, key, predicate.value), indent=2) + "\n"
    if output is not None:
        write_atomic(app.path(output), text)
    else:
        app.stdout.write(text)
