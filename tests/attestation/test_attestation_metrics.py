"""Standalone ``attest verify`` feeds the run history, so the verification metrics count it
(read back from a real ``attest serve`` over HTTP)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.attestation.signing import PIPELINE, fresh_copy, scrape, signed_template
from tests.support import attest


@pytest.fixture
def signed(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    return fresh_copy(signed_template(tmp_path_factory, PIPELINE, "--output", "r.json"),
                      tmp_path)




def test_standalone_verifications_are_counted_by_type_and_reason(signed: Path) -> None:
    assert attest("verify", "r.json", cwd=signed).returncode == 0
    doc = json.loads((signed / "r.json").read_text())
    doc["status"] = "failure"
    (signed / "edited.json").write_text(json.dumps(doc))
    assert attest("verify", "edited.json", cwd=signed).returncode == 1
    (signed / "policy.yaml").write_text(
        "policies:\n  - name: deploy\n    type: step-required\n    step_pattern: deploy\n")
    assert attest("verify", "r.json", "--policy", "policy.yaml", cwd=signed).returncode == 1
    (signed / "junk.yaml").write_text("- not a receipt\n")
    assert attest("verify", "junk.yaml", cwd=signed).returncode == 2

    m = scrape(signed)
    assert m['attest_verifications_total{type="signature"}'] == 3
    assert m['attest_verifications_total{type="receipt"}'] == 4
    assert m['attest_verifications_total{type="policy"}'] == 1
    assert m['attest_verification_failures_total{reason="invalid_signature"}'] == 1
    assert m['attest_verification_failures_total{reason="policy_violation"}'] == 1
    assert m['attest_verification_failures_total{reason="malformed"}'] == 1
    assert m['attest_verification_duration_seconds_count{type="signature"}'] == 3
