"""Receipts' signed bytes are RFC 8785 (JCS): an outside verifier that computes JCS with the
``rfc8785`` package and checks Ed25519 with ``cryptography`` accepts attest's receipts,
including a failing run's (whose durations hold floats such as 0.0 and 1e-07, where
Python's ``json`` writes ``0.0``/``1e-07`` and JCS writes ``0``/``1e-7``). v1 receipts,
signed over the older canonical form, still verify."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import rfc8785
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tests.support import attest, write_pipeline

FAILING = """
version: "0.1"
name: failing
steps:
  build:
    run: echo building && exit 3
  test:
    run: echo never
    needs: [build]
"""


def outside_verify(doc: dict[str, Any]) -> None:
    """What a third party does: JCS over every field but ``signature``, then Ed25519
    (raises ``InvalidSignature`` when the bytes differ)."""
    body = {k: v for k, v in doc.items() if k != "signature"}
    public = bytes.fromhex(doc["signer_public_key"].removeprefix("ed25519:"))
    signature = bytes.fromhex(doc["signature"].removeprefix("ed25519:"))
    Ed25519PublicKey.from_public_bytes(public).verify(signature, rfc8785.dumps(body))


def sample(schema: str) -> dict[str, Any]:
    return {"schema": schema, "pipeline": "p", "pipeline_hash": "blake3:" + "0" * 64,
            "run_id": "r1", "status": "failure", "timestamp": "2026-01-01T00:00:00.000000Z",
            "total_duration_secs": 1e-07, "attest_version": "0.1.0",
            "environment": {"os": "Linux", "hostname": "h\u00e9"},
            "steps": [{"name": "a", "command": "false", "status": "failure", "exit_code": 1,
                       "duration_secs": 1e-07, "inputs": [], "outputs": []},
                      {"name": "b", "command": "true", "status": "skipped", "exit_code": None,
                       "duration_secs": 0.0, "inputs": [], "outputs": []}]}


def test_signed_bytes_are_the_rfc8785_bytes_for_new_receipts() -> None:
    from attest_cli.attestation import receipt as receipts

    doc = sample(receipts.SCHEMA)
    assert receipts.SCHEMA == "attest.receipt/v2"
    expected = rfc8785.dumps(doc)
    assert b'"total_duration_secs":1e-7' in expected and b'"duration_secs":0,' in expected
    assert receipts.signed_bytes(doc) == expected
    signed = receipts.sign(doc, Ed25519PrivateKey.generate())
    outside_verify(signed)


def test_a_failing_runs_receipt_verifies_outside_attest_over_jcs(project: Path) -> None:
    write_pipeline(project, FAILING)
    r = attest("run", "--sign", "--output", "receipt.json", cwd=project)
    assert r.returncode == 1, r.stderr
    doc = json.loads((project / "receipt.json").read_text())
    assert doc["schema"] == "attest.receipt/v2" and doc["status"] == "failure"
    skipped = doc["steps"][1]
    assert skipped["status"] == "skipped" and skipped["duration_secs"] == 0.0
    # the float 0.0 is where Python's json and JCS disagree; the signature is over JCS
    body = {k: v for k, v in doc.items() if k != "signature"}
    assert json.dumps(body, sort_keys=True, separators=(",", ":")).encode() != \
        rfc8785.dumps(body)
    outside_verify(doc)
    # the YAML copy (.attest/receipts) is the same receipt: same JCS bytes, same signature
    stored = next((project / ".attest" / "receipts").glob("receipt_*.yaml"))
    outside_verify(yaml.safe_load(stored.read_text()))
    v = attest("verify", "receipt.json", str(stored), cwd=project)
    assert v.returncode == 0, v.stdout + v.stderr


def test_v2_signature_survives_a_tool_that_rewrites_0_0_as_0(project: Path) -> None:
    """JCS makes 0.0 and 0 the same number: a JSON tool that drops ``.0`` keeps it valid."""
    from attest_cli.attestation import receipt as receipts

    key = Ed25519PrivateKey.generate()
    doc = receipts.sign(sample(receipts.SCHEMA), key)
    doc["steps"][1]["duration_secs"] = 0
    (project / "r.json").write_text(json.dumps(doc))
    pub = project / "k.pub"
    pub.write_text(doc["signer_public_key"] + "\n")
    r = attest("verify", "r.json", "--public-key", str(pub), "--no-pipeline", cwd=project)
    assert r.returncode == 0 and "[OK]   signature" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("form", ["yaml", "json"])
def test_v1_receipts_still_verify_with_the_v1_canonical_form(project: Path, form: str) -> None:
    """A v1 receipt was signed over ``json.dumps(sort_keys, compact, ensure_ascii=False)``;
    it keeps verifying, and an edit to it still fails."""
    key = Ed25519PrivateKey.generate()
    from attest_cli.attestation.keys import public_text, raw_public

    doc = sample("attest.receipt/v1")
    doc["signer_public_key"] = public_text(raw_public(key))
    legacy = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                        allow_nan=False).encode()
    assert legacy != rfc8785.dumps(doc)
    doc["signature"] = "ed25519:" + key.sign(legacy).hex()
    path = project / f"v1.{form}"
    path.write_text(json.dumps(doc) if form == "json" else yaml.safe_dump(doc))
    pub = project / "k.pub"
    pub.write_text(doc["signer_public_key"] + "\n")
    r = attest("verify", path.name, "--public-key", str(pub), "--no-pipeline", cwd=project)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "attest.receipt/v1" in r.stdout
    doc["status"] = "success"
    path.write_text(json.dumps(doc) if form == "json" else yaml.safe_dump(doc))
    r = attest("verify", path.name, "--public-key", str(pub), "--no-pipeline", cwd=project)
    assert r.returncode == 1 and "[FAIL] signature" in r.stdout, r.stdout
