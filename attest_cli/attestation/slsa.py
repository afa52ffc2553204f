"""A receipt as a SLSA provenance v1 predicate (``https://slsa.dev/provenance/v1``).

SLSA-aware tools (policy engines, slsa-verifier-style checks) read this predicate rather
than attest's own. Every field comes from the signed receipt; the receipt itself rides
along as a byproduct (its JSON, base64 in ``content``), so ``attest verify`` can still run
every check on a SLSA envelope, and nothing in it is unsigned: the DSSE signature covers
the whole statement.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from attest_cli.attestation.receipt import LoadedReceipt, parse_time, utc_text
from attest_cli.errors import InputError

PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://attest.dev/buildtypes/pipeline/v1"
BUILDER_ID = "https://attest.dev/builders/attest-cli/local"
RECEIPT_NAME = "attest-receipt"
RECEIPT_MEDIA_TYPE = "application/vnd.attest.receipt+json"


def sources(receipt: LoadedReceipt) -> dict[str, str]:
    """``{path: blake3 digest}`` of the inputs no step of the run produced (the sources)."""
    produced = {e["path"] for step in receipt.steps for e in step["outputs"]}
    out: dict[str, str] = {}
    for step in receipt.steps:
        for entry in step["inputs"]:
            if entry["path"] not in produced:
                out.setdefault(entry["path"], entry["hash"])
    return out


def predicate(receipt: LoadedReceipt, dependencies: list[dict[str, Any]]) -> dict[str, Any]:
    """The SLSA v1 Provenance of ``receipt``; ``dependencies`` are resource descriptors of
    :func:`sources` (with the sha256 of each file, computed by the caller)."""
    body = receipt.body
    finished = parse_time(body["timestamp"])
    started = finished - float(body["total_duration_secs"])
    embedded = json.dumps(body, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode("utf-8")
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "pipeline": body["pipeline"],
                "pipelineHash": body["pipeline_hash"],
                "steps": [s["name"] for s in receipt.steps],
            },
            "internalParameters": {
                "attestVersion": body["attest_version"],
                "environment": dict(body["environment"]),
            },
            "resolvedDependencies": dependencies,
        },
        "runDetails": {
            "builder": {"id": BUILDER_ID, "version": {"attest-cli": body["attest_version"]}},
            "metadata": {"invocationId": body["run_id"], "startedOn": utc_text(started),
                         "finishedOn": utc_text(finished)},
            "byproducts": [{"name": RECEIPT_NAME, "mediaType": RECEIPT_MEDIA_TYPE,
                            "content": base64.b64encode(embedded).decode("ascii")}],
        },
    }


def embedded_receipt(pred: Any, *, path: str) -> Any:
    """The receipt body carried in a SLSA predicate's byproducts (InputError if absent)."""
    where = "payload.predicate.runDetails.byproducts"
    run = pred.get("runDetails") if isinstance(pred, dict) else None
    items = run.get("byproducts") if isinstance(run, dict) else None
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("name") == RECEIPT_NAME:
            try:
                return json.loads(base64.b64decode(str(item.get("content")), validate=True))
            except (binascii.Error, ValueError, RecursionError):
                raise InputError("the embedded receipt is not base64 JSON", path=path,
                                 key=where) from None
    raise InputError(f"no '{RECEIPT_NAME}' byproduct: not a SLSA provenance written by "
                     "attest", path=path, key=where)
