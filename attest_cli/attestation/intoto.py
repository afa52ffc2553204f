"""in-toto Statement v1 in a DSSE envelope: the same facts as a receipt, for other tools.

The envelope is signed over DSSE's pre-authentication encoding, ``PAE(payloadType,
payload)``, so the payload type is part of the signed bytes: changing it breaks the
signature (checking it outside the signature was cosign's CVE-2022-35929). The predicate
is attest's receipt (``https://attest.dev/receipt/v1``) or SLSA provenance v1
(:mod:`attest_cli.attestation.slsa`); the signature's ``keyid`` is securesystemslib's
default id of the key (:func:`~attest_cli.attestation.keys.dsse_keyid`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attest_cli.attestation import slsa
from attest_cli.attestation.keys import KEY_PREFIX, dsse_keyid, fingerprint, raw_public
from attest_cli.attestation.receipt import LoadedReceipt, validate_body, workspace_digest
from attest_cli.errors import InputError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://attest.dev/receipt/v1"
PREDICATES = {"attest": PREDICATE_TYPE, "slsa-provenance-v1": slsa.PREDICATE_TYPE}


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the envelope's signature covers."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def subjects(receipt: LoadedReceipt, root: Path) -> list[dict[str, Any]]:
    """One subject per output file, with sha256 (what in-toto tools expect) and blake3."""
    latest: dict[str, str] = {}
    for step in receipt.steps:
        for entry in step["outputs"]:
            latest[entry["path"]] = entry["hash"]
    return described(receipt, root, latest, "output")


def described(receipt: LoadedReceipt, root: Path, files: dict[str, str],
              kind: str) -> list[dict[str, Any]]:
    """Resource descriptors ``{name, digest: {sha256, blake3}}`` of ``files`` (path: blake3).

    The sha256 is computed from the workspace file, so the file must still be the one the
    receipt names; otherwise the export would attest to something that was never signed.
    """
    out = []
    for path, digest in sorted(files.items()):
        full = root / path
        actual = workspace_digest(full)
        if actual is None:
            raise InputError(f"{kind} {path} named in the receipt is missing from the "
                             "workspace; cannot compute its sha256", path=receipt.path)
        if actual != digest:
            raise InputError(f"{kind} {path} changed since the receipt was signed",
                             path=receipt.path)
        sha = hashlib.sha256()
        if full.is_symlink():  # recorded by its target text, like the receipt's blake3
            sha.update(os.fsencode(os.readlink(full)))
        else:
            with full.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    sha.update(chunk)
        out.append({"name": path, "digest": {"sha256": sha.hexdigest(),
                                              "blake3": digest.split(":", 1)[1]}})
    return out


def statement(receipt: LoadedReceipt, root: Path, predicate: str = "attest"
              ) -> dict[str, Any]:
    """The in-toto Statement; ``predicate`` names one of :data:`PREDICATES`."""
    if predicate == "attest":
        body: dict[str, Any] = receipt.body
    else:
        deps = described(receipt, root, slsa.sources(receipt), "input")
        body = slsa.predicate(receipt, deps)
    return {"_type": STATEMENT_TYPE, "subject": subjects(receipt, root),
            "predicateType": PREDICATES[predicate], "predicate": body}


def envelope(receipt: LoadedReceipt, root: Path, key: Ed25519PrivateKey,
             predicate: str = "attest") -> dict[str, Any]:
    """The signed DSSE envelope of ``receipt`` (which must have been signed by ``key``)."""
    raw = raw_public(key)
    if receipt.signer != raw:
        raise InputError("the receipt was signed by another key than signing.key; export it "
                         "with the key that signed it", path=receipt.path)
    payload = json.dumps(statement(receipt, root, predicate), sort_keys=True, separators=(",", ":"),
                         ensure_ascii=False).encode("utf-8")
    sig = key.sign(pae(PAYLOAD_TYPE, payload))
    return {"payloadType": PAYLOAD_TYPE,
            "payload": base64.b64encode(payload).decode("ascii"),
            "signatures": [{"keyid": dsse_keyid(raw),
                            "sig": base64.b64encode(sig).decode("ascii")}]}


def _b64(value: Any, what: str, path: str) -> bytes:
    if not isinstance(value, str):
        raise InputError(f"{what}: expected a base64 string", path=path)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{what}: not valid base64", path=path) from None


def load_envelope(data: dict[str, Any], *, path: str) -> LoadedReceipt:
    """Read a DSSE envelope as a receipt whose signed message is the PAE."""
    for key in data:
        if key not in ("payloadType", "payload", "signatures"):
            raise InputError("unknown DSSE envelope field", path=path, key=str(key))
    payload_type = data.get("payloadType")
    if not isinstance(payload_type, str):
        raise InputError("expected a string", path=path, key="payloadType")
    payload = _b64(data.get("payload"), "payload", path)
    sigs = data.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        raise InputError("expected a non-empty list", path=path, key="signatures")
    try:
        stmt = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise InputError("the payload is not a JSON in-toto Statement", path=path,
                         key="payload") from None
    if not isinstance(stmt, dict) or stmt.get("_type") != STATEMENT_TYPE:
        raise InputError(f"the payload is not an in-toto Statement ({STATEMENT_TYPE})",
                         path=path, key="payload._type")
    kind = stmt.get("predicateType")
    if kind not in PREDICATES.values():
        raise InputError(f"predicateType {kind!r} is not an attest receipt "
                         f"({' or '.join(PREDICATES.values())})", path=path,
                         key="payload.predicateType")
    if not isinstance(stmt.get("subject"), list):
        raise InputError("expected a list", path=path, key="payload.subject")
    if kind == slsa.PREDICATE_TYPE:
        predicate = slsa.embedded_receipt(stmt.get("predicate"), path=path)
        where: tuple[str, ...] = ("payload", "predicate", "runDetails", "byproducts",
                                  slsa.RECEIPT_NAME)
    else:
        predicate, where = stmt.get("predicate"), ("payload", "predicate")
    body = validate_body(predicate, path=path, prefix=where, signed=False)
    signer = bytes.fromhex(body["signer_public_key"][len(KEY_PREFIX):])
    chosen = None
    for i, entry in enumerate(sigs):
        if not isinstance(entry, dict) or not isinstance(entry.get("sig"), str):
            raise InputError("expected {keyid, sig}", path=path, key=f"signatures.{i}")
        # the keyid is securesystemslib's default id, or attest's fingerprint (older exports)
        if chosen is None or entry.get("keyid") in (dsse_keyid(signer), fingerprint(signer)):
            chosen = entry
    assert chosen is not None
    sig = _b64(chosen["sig"], "signatures.sig", path)
    problems = []
    if payload_type != PAYLOAD_TYPE:
        problems.append(f"payloadType {payload_type!r} is not {PAYLOAD_TYPE}")
    return LoadedReceipt(path=path, body=body, signature=sig, signer=signer,
                         signed_message=pae(payload_type, payload), form="dsse",
                         payload_type=payload_type, problems=problems)
