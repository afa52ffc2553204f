"""``attest verify``: check receipts' signatures, hashes, expiry and policies."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from attest_cli.cli.common import app_context, configure_logging

HELP = ("Verify signed receipts (YAML, JSON or in-toto DSSE) against signatures, trusted "
        "keys, expiry, the pipeline, the workspace's files and policies. Exit 0 only if every "
        "check passes, 1 if one fails, 2 if a receipt is unusable.")


class Format(StrEnum):
    text = "text"
    json = "json"


def verify(
    ctx: typer.Context,
    receipts: list[str] = typer.Argument(..., metavar="RECEIPT",
                                         help="Receipt files or globs."),
    public_key: Path | None = typer.Option(None, "--public-key", help="Require a signature "
                                           "by this public key."),
    trusted_keys: str | None = typer.Option(None, "--trusted-keys", help="Comma-separated "
                                            "public key files whose signatures are trusted."),
    trusted_only: bool = typer.Option(False, "--trusted-only", help="Trust only keys in the "
                                      "trust store and signing.trusted_keys."),
    policy: Path | None = typer.Option(None, "--policy", help="Policy file to evaluate."),
    no_signatures: bool = typer.Option(False, "--no-signatures", help="Skip the signature "
                                       "and signer checks."),
    no_pipeline: bool = typer.Option(False, "--no-pipeline", help="Do not compare with the "
                                     "current attest.yaml."),
    pipeline: Path | None = typer.Option(None, "--pipeline", "-p", help="Pipeline file to "
                                         "compare with [default: attest.yaml]."),
    fmt: Format = typer.Option(Format.text, "--format", "-f", help="text or json."),
) -> None:
    from attest_cli.attestation.standalone import VerifyRequest, verify_receipts
    from attest_cli.errors import AttestError, ExitCode
    from attest_cli.render.registry import VERIFICATION

    app = app_context(ctx)
    configure_logging(app)
    request = VerifyRequest(
        receipts=list(receipts), public_key=str(public_key) if public_key else None,
        trusted_keys=[t.strip() for t in (trusted_keys or "").split(",") if t.strip()],
        trusted_only=trusted_only, policy=str(policy) if policy else None,
        check_signatures=not no_signatures, check_pipeline=not no_pipeline,
        pipeline=str(pipeline) if pipeline else None)
    results = verify_receipts(app, request)
    app.stdout.write(VERIFICATION.render(fmt.value, results))
    failed = [r for r in results if not r.ok]
    if failed:
        reasons = sorted({reason for r in failed for reason in r.reasons})
        raise AttestError(f"verification failed for {len(failed)} of {len(results)} "
                          f"receipt(s): {', '.join(reasons)}", exit_code=ExitCode.FAILURE)
