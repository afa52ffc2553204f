"""ReceiptVerifier in-process: a receipt built, signed and loaded from a temporary project."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from attest_cli.attestation import receipt as receipts
from attest_cli.attestation.keys import KnownKey, raw_public
from attest_cli.attestation.verify import (
    EXPIRED,
    HASH_MISMATCH,
    INVALID_SIGNATURE,
    UNTRUSTED_SIGNER,
    ReceiptVerifier,
    VerifyOptions,
)
from attest_cli.engine.events import EventBus, VerificationFinished
from attest_cli.engine.run_report import RunReport, StepResult
from attest_cli.engine.testing import RecordingObserver
from attest_cli.pipeline.model import Pipeline, Step

pytestmark = pytest.mark.unit  # in-process: the fast layer (make test-unit)

NOW = 1_700_000_000.0


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def project(tmp_path: Path) -> Pipeline:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "in.txt").write_text("source\n")
    (root / "out.txt").write_text("built\n")
    step = Step(name="build", run="cp in.txt out.txt", inputs=("in.txt",), outputs=("out.txt",))
    return Pipeline(name="p", path=root / "attest.yaml", root=root, steps={"build": step})


def signed_receipt(pipeline: Pipeline, key: Ed25519PrivateKey, tmp_path: Path, *,
                   expires_in: float | None = None, edit: dict[str, Any] | None = None
                   ) -> receipts.LoadedReceipt:
    report = RunReport(run_id="r1", pipeline="p", pipeline_file="attest.yaml",
                       started_at=NOW, finished_at=NOW + 1, status="success")
    report.steps = [StepResult(name="build", command="cp in.txt out.txt", status="success",
                               exit_code=0, wall_seconds=1.0)]
    doc = receipts.sign(receipts.build(report, pipeline, mask=str, now=NOW,
                                       expires_in=expires_in), key)
    doc.update(edit or {})
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(doc))
    return receipts.load(path)


def verifier(pipeline: Pipeline, key: Ed25519PrivateKey | None, bus: EventBus | None = None,
             **kw: Any) -> ReceiptVerifier:
    trusted = [KnownKey(raw_public(key), "trusted", "test")] if key else []
    options = VerifyOptions(root=pipeline.root, trusted=trusted,
                            pipeline_hash=receipts.pipeline_hash(pipeline), now=NOW, **kw)
    return ReceiptVerifier(options, bus)


def checks(result: Any) -> dict[str, str]:
    return {c.name: c.status for c in result.checks}


def test_a_good_receipt_passes_every_check_and_publishes_two_groups(
        project: Pipeline, key: Ed25519PrivateKey, tmp_path: Path) -> None:
    bus, events = EventBus(), RecordingObserver()
    bus.subscribe(events)
    result = verifier(project, key, bus).verify(signed_receipt(project, key, tmp_path))
    assert result.ok, result.to_dict()
    assert checks(result) == {"format": "ok", "signature": "ok", "signer": "ok",
                              "expiry": "ok", "pipeline": "ok", "files": "ok"}
    assert [c.name for c in result.checks] == ["format", "signature", "signer", "expiry",
                                               "pipeline", "files"]
    published = events.of(VerificationFinished)
    assert [(e.kind, e.ok, e.reason) for e in published] == [("signature", True, None),
                                                              ("receipt", True, None)]


def test_a_changed_workspace_file_fails_the_files_check(project: Pipeline,
                                                        key: Ed25519PrivateKey,
                                                        tmp_path: Path) -> None:
    loaded = signed_receipt(project, key, tmp_path)
    (project.root / "out.txt").write_text("tampered\n")
    (project.root / "in.txt").unlink()
    result = verifier(project, key).verify(loaded)
    assert not result.ok
    assert result.reasons == [HASH_MISMATCH]
    details = [c.detail for c in result.checks if c.name == "files"]
    assert details[0] == "in.txt: missing from the workspace"
    assert details[1].startswith("out.txt: content differs")


def test_an_edited_receipt_fails_the_signature(project: Pipeline, key: Ed25519PrivateKey,
                                               tmp_path: Path) -> None:
    loaded = signed_receipt(project, key, tmp_path, edit={"status": "failure"})
    result = verifier(project, key).verify(loaded)
    assert checks(result)["signature"] == "fail"
    assert result.reasons == [INVALID_SIGNATURE]


def test_an_unknown_signer_is_untrusted(project: Pipeline, key: Ed25519PrivateKey,
                                        tmp_path: Path) -> None:
    result = verifier(project, None).verify(signed_receipt(project, key, tmp_path))
    assert (checks(result)["signature"], checks(result)["signer"]) == ("ok", "fail")
    assert result.reasons == [UNTRUSTED_SIGNER]
    assert "no trusted keys are configured" in result.checks[2].detail


def test_expiry_and_pipeline_changes_are_reported_together(project: Pipeline,
                                                           key: Ed25519PrivateKey,
                                                           tmp_path: Path) -> None:
    loaded = signed_receipt(project, key, tmp_path, expires_in=60)
    v = verifier(project, key)
    v.options.now = NOW + 61
    v.options.pipeline_hash = "sha256:" + "0" * 64
    result = v.verify(loaded)
    assert checks(result)["expiry"] == "fail"
    assert checks(result)["pipeline"] == "fail"
    assert result.reasons == sorted([EXPIRED, HASH_MISMATCH])


def test_no_signatures_skips_both_signature_checks(project: Pipeline, key: Ed25519PrivateKey,
                                                   tmp_path: Path) -> None:
    bus, events = EventBus(), RecordingObserver()
    bus.subscribe(events)
    result = verifier(project, None, bus, check_signatures=False).verify(
        signed_receipt(project, key, tmp_path))
    assert result.ok
    assert (checks(result)["signature"], checks(result)["signer"]) == ("skip", "skip")
    assert [e.kind for e in events.of(VerificationFinished)] == ["receipt"]
