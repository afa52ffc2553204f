"""Policies evaluated by ``attest verify --policy`` and ``attest run --verify --policy``."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.attestation.signing import fresh_copy, signed_template
from tests.support import attest

PIPELINE = """
version: "0.1"
name: policed
steps:
  build:
    run: mkdir -p dist && echo built > dist/app.txt
    outputs: [dist/]
  security-scan:
    run: echo scanning
    needs: [build]
"""

PASSING = {
    "step-required": {"step_pattern": "*security*"},
    "signature-required": {},
    "max-age": {"max_age": "24h"},
    "forbidden-command": {"pattern": "curl .*\\\\| *sh"},
    "output-required": {"path": "dist/"},
}
FAILING = {
    "step-required": {"step_pattern": "*deploy*"},
    "signature-required": {},  # fails under --no-signatures
    "max-age": {"max_age": "1ms"},
    "forbidden-command": {"pattern": "echo scan"},
    "output-required": {"path": "build/"},
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return signed_template(tmp_path_factory, PIPELINE, "--output", "receipt.yaml")


@pytest.fixture
def signed(template: Path, tmp_path: Path) -> Path:
    return fresh_copy(template, tmp_path)


def policy_file(root: Path, rules: list[tuple[str, str, dict[str, str]]],
                name: str = "policy.yaml") -> Path:
    lines = ["policies:"]
    for rule_name, kind, fields in rules:
        lines.append(f"  - name: {rule_name}")
        lines.append(f"    type: {kind}")
        for key, value in fields.items():
            lines.append(f'    {key}: "{value}"')
    path = root / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_every_policy_type_passes_on_a_good_receipt(signed: Path) -> None:
    policy_file(signed, [(f"p-{k}", k, v) for k, v in PASSING.items()])
    r = attest("verify", "receipt.yaml", "--policy", "policy.yaml", "--format", "json",
               cwd=signed)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    policy = [c for c in doc["receipts"][0]["checks"] if c["check"].startswith("policy ")]
    assert [c["check"] for c in policy] == [f"policy p-{k}" for k in PASSING]
    assert all(c["status"] == "ok" for c in policy)


@pytest.mark.parametrize("kind", list(FAILING))
@pytest.mark.parametrize("enforcement", ["strict", "warn"])
def test_each_policy_type_is_enforced_strict_or_warned(signed: Path, kind: str,
                                                       enforcement: str) -> None:
    fields = {**FAILING[kind], "enforcement": enforcement}
    policy_file(signed, [("the-rule", kind, fields)])
    extra = ["--no-signatures"] if kind == "signature-required" else []
    r = attest("verify", "receipt.yaml", "--policy", "policy.yaml", *extra, cwd=signed)
    line = next(x for x in r.stdout.splitlines() if "policy the-rule" in x)
    if enforcement == "strict":
        assert r.returncode == 1, r.stdout
        assert line.strip().startswith("[FAIL]")
        assert "policy_violation" in r.stderr
    else:
        assert r.returncode == 0, r.stdout + r.stderr
        assert line.strip().startswith("[WARN]")


def test_run_verify_with_a_violated_policy_fails_the_run(signed: Path) -> None:
    policy_file(signed, [("need-deploy", "step-required", {"step_pattern": "deploy*"})])
    r = attest("run", "--sign", "--verify", "--policy", "policy.yaml", "--report", "r.json",
               cwd=signed)
    assert r.returncode == 1
    assert "need-deploy" in r.stderr and "policy_violation" in r.stderr
    report = json.loads((signed / "r.json").read_text())
    assert report["status"] == "failure" and report["exit_code"] == 1
    assert report["receipt"]


def test_run_verify_with_a_satisfied_policy_succeeds(signed: Path) -> None:
    policy_file(signed, [("scan", "step-required", {"step_pattern": "*security*"})])
    r = attest("run", "--verify", "--policy", "policy.yaml", cwd=signed)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize(("text", "line", "words"), [
    ("""
     policies:
       - name: x
         type: step-requird
         step_pattern: "*"
     """, 3, ["unknown policy type", "did you mean 'step-required'"]),
    ("""
     policies:
       - name: x
         type: max-age
         max_age: 1h
         step_pattern: "*"
     """, 5, ["unknown field", "step_pattern"]),
    ("""
     policies:
       - name: x
         type: forbidden-command
         pattern: "curl ("
     """, 4, ["regular expression"]),
    ("""
     policies:
       - name: x
         type: output-required
     """, 2, ["an output-required policy needs 'path'"]),
    ("""
     policies:
       - name: x
         type: max-age
         max_age: soon
     """, 4, ["duration"]),
    ("""
     policy:
       - name: x
     """, 1, ["did you mean 'policies'"]),
])
def test_bad_policy_files_exit_2_with_file_line_and_hint(signed: Path, text: str, line: int,
                                                         words: list[str]) -> None:
    (signed / "bad.yaml").write_text(textwrap.dedent(text).lstrip())
    for args in (["verify", "receipt.yaml", "--policy", "bad.yaml"],
                 ["run", "--verify", "--policy", "bad.yaml"]):
        r = attest(*args, cwd=signed)
        assert r.returncode == 2, r.stderr
        err = r.stderr.strip().splitlines()
        assert len(err) == 1, err
        assert f"bad.yaml:{line}" in err[0]
        for word in words:
            assert word in err[0]
