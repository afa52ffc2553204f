"""The in-toto export verified by the ecosystem's own tools: securesystemslib's DSSE
``Envelope.verify`` with the exported public key loaded the way its users load keys (no
attest-specific key id), and the SLSA provenance v1 predicate parsed by the
``in-toto-attestation`` protobuf bindings."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.attestation.signing import signed_project_fixtures
from tests.support import attest

PIPELINE = """
version: "0.1"
name: demo
steps:
  build:
    run: mkdir -p dist && cat src.txt > dist/app.txt && echo data > dist/lib.bin
    inputs: [src.txt]
    outputs: [dist/]
  package:
    run: tar -cf dist.tar dist
    inputs: [dist/]
    outputs: [dist.tar]
    needs: [build]
"""

template, signed = signed_project_fixtures(PIPELINE, "--output", "receipt.json",
                                           files={"src.txt": "source\n"})


def export(project: Path, *args: str) -> dict[str, Any]:
    r = attest("receipt", "export", "receipt.json", *args, cwd=project)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def sslib_key(project: Path) -> Any:
    """The exported public key as a securesystemslib user loads a PEM key."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    from securesystemslib.signer import SSlibKey

    r = attest("keys", "export", "--format", "pem", cwd=project)
    assert r.returncode == 0, r.stderr
    return SSlibKey.from_crypto(load_pem_public_key(r.stdout.encode()))


@pytest.mark.parametrize("predicate", ["attest", "slsa-provenance-v1"])
def test_securesystemslib_verifies_the_envelope_out_of_the_box(signed: Path,
                                                              predicate: str) -> None:
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import VerificationError

    env = export(signed, "--predicate", predicate)
    key = sslib_key(signed)
    assert env["signatures"][0]["keyid"] == key.keyid
    accepted = Envelope.from_dict(copy.deepcopy(env)).verify([key], 1)
    assert list(accepted) == [key.keyid]
    # and a changed payload is rejected by the same third-party verifier
    statement = json.loads(base64.b64decode(env["payload"]))
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    env["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    with pytest.raises(VerificationError):
        Envelope.from_dict(copy.deepcopy(env)).verify([key], 1)


def test_attest_verify_accepts_envelopes_with_the_new_and_the_old_keyid(signed: Path) -> None:
    env = export(signed)
    (signed / "new.json").write_text(json.dumps(env))
    from attest_cli.attestation.keys import fingerprint, load_public_key

    old = dict(env, signatures=[dict(env["signatures"][0], keyid=fingerprint(
        load_public_key(signed / ".attest" / "keys" / "public.key")))])
    (signed / "old.json").write_text(json.dumps(old))
    r = attest("verify", "new.json", "old.json", cwd=signed)
    assert r.returncode == 0, r.stdout + r.stderr


def test_slsa_provenance_v1_predicate_has_the_required_fields(signed: Path) -> None:
    from google.protobuf import json_format
    from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
    from in_toto_attestation.v1 import statement_pb2
    from in_toto_attestation.v1.statement import Statement

    env = export(signed, "--predicate", "slsa-provenance-v1")
    raw = json.loads(base64.b64decode(env["payload"]))
    assert raw["predicateType"] == "https://slsa.dev/provenance/v1"
    # the in-toto bindings: a valid Statement v1, and a predicate that parses as a SLSA v1
    # Provenance message with no unknown field anywhere
    stmt = Statement.copy_from_pb(json_format.ParseDict(raw, statement_pb2.Statement()))
    stmt.validate()
    prov = json_format.ParseDict(raw["predicate"], provenance_pb2.Provenance())
    bd, rd = prov.build_definition, prov.run_details
    assert bd.build_type.startswith("https://")
    receipt = json.loads((signed / "receipt.json").read_text())
    assert dict(bd.external_parameters)["pipeline"] == "demo"
    assert list(dict(bd.external_parameters)["steps"]) == ["build", "package"]
    # dependencies: the sources (inputs no step produced), with sha256 of the file
    deps = {d.name: dict(d.digest) for d in bd.resolved_dependencies}
    assert deps == {"src.txt": {
        "sha256": hashlib.sha256((signed / "src.txt").read_bytes()).hexdigest(),
        "blake3": receipt["steps"][0]["inputs"][0]["hash"].split(":", 1)[1]}}
    assert rd.builder.id.startswith("https://")
    assert rd.metadata.invocation_id == receipt["run_id"]
    assert rd.metadata.started_on.ToSeconds() <= rd.metadata.finished_on.ToSeconds()
    subjects = {s["name"] for s in raw["subject"]}
    assert subjects == {"dist/app.txt", "dist/lib.bin", "dist.tar"}
    # attest itself verifies the SLSA envelope too (the signed receipt rides along as a
    # byproduct, so every check still runs)
    (signed / "slsa.json").write_text(json.dumps(env))
    r = attest("verify", "slsa.json", "--format", "json", cwd=signed)
    assert r.returncode == 0, r.stdout + r.stderr
    assert [c["check"] for c in json.loads(r.stdout)["receipts"][0]["checks"]] == \
        ["format", "signature", "signer", "expiry", "pipeline", "files"]


def test_keys_export_sslib_loads_with_sslibkey_from_dict(signed: Path) -> None:
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    r = attest("keys", "export", "--format", "sslib", cwd=signed)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    key = SSlibKey.from_dict(data.pop("keyid"), data)
    assert key.keyid == sslib_key(signed).keyid
    env = export(signed)
    assert list(Envelope.from_dict(copy.deepcopy(env)).verify([key], 1)) == [key.keyid]


def test_a_slsa_envelope_without_the_receipt_byproduct_is_one_clear_error(signed: Path) -> None:
    env = export(signed, "--predicate", "slsa-provenance-v1")
    statement = json.loads(base64.b64decode(env["payload"]))
    for byproducts, expected in (([], "no 'attest-receipt' byproduct"),
                                 ([{"name": "attest-receipt", "content": "%%"}],
                                  "not base64 JSON")):
        statement["predicate"]["runDetails"]["byproducts"] = byproducts
        env["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
        (signed / "bad.json").write_text(json.dumps(env))
        r = attest("verify", "bad.json", cwd=signed)
        assert r.returncode == 2, r.stdout + r.stderr
        assert expected in r.stderr and "Traceback" not in r.stderr
        assert "payload.predicate.runDetails.byproducts" in r.stderr
