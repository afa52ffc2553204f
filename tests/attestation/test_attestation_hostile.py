"""Hostile and damaged receipts: one line naming the problem, exit 2, never a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.attestation.signing import fresh_copy, signed_template
from tests.support import attest

PIPELINE = """
version: "0.1"
name: hostile
steps:
  build:
    run: mkdir -p out && echo x > out/a.txt
    outputs: [out/]
"""


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return signed_template(tmp_path_factory, PIPELINE, "--output", "good.yaml")


@pytest.fixture
def project(template: Path, tmp_path: Path) -> Path:
    return fresh_copy(template, tmp_path)


def good(project: Path) -> dict:
    return yaml.safe_load((project / "good.yaml").read_text())


def rejected(project: Path, name: str, *words: str) -> str:
    r = attest("verify", name, cwd=project)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert name in lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_an_oversized_receipt_is_refused_without_reading_it(project: Path) -> None:
    with (project / "big.yaml").open("wb") as fh:
        fh.truncate(50 * 2**20 + 1)  # sparse: the size alone must refuse it
    rejected(project, "big.yaml", "larger than")


def test_a_yaml_alias_bomb_is_bounded(project: Path) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 9)}]")
    (project / "bomb.yaml").write_text("\n".join(lines) + "\n")
    rejected(project, "bomb.yaml", "alias bomb")


def test_truncated_receipts_are_refused(project: Path) -> None:
    text = (project / "good.yaml").read_text()
    (project / "cut.yaml").write_text(text[: len(text) // 2])
    rejected(project, "cut.yaml")
    raw = json.dumps(good(project))
    (project / "cut.json").write_text(raw[: len(raw) // 2])
    rejected(project, "cut.json", "not valid JSON")


@pytest.mark.parametrize(("mutate", "words"), [
    (lambda d: d.update(steps="all of them"), ["steps", "expected a list"]),
    (lambda d: d.update(total_duration_secs="fast"), ["total_duration_secs"]),
    (lambda d: d.update(total_duration_secs=float("nan")), ["total_duration_secs"]),
    (lambda d: d["steps"][0].update(exit_code="0"), ["steps.0.exit_code"]),
    (lambda d: d["steps"][0].update(status="great"), ["unknown step status"]),
    (lambda d: d.update(signature="ed25519:" + "zz" * 64), ["signature", "malformed"]),
    (lambda d: d.update(signature="ed25519:abc"), ["signature", "malformed"]),
    (lambda d: d.update(signer_public_key=12), ["signer_public_key", "expected a string"]),
    (lambda d: d.update(timestamp="yesterday"), ["timestamp", "RFC 3339"]),
    (lambda d: d["steps"][0]["outputs"].append({"path": "../../etc/passwd",
                                               "hash": "blake3:" + "0" * 64}),
     ["relative path"]),
    (lambda d: d.update(extra="field"), ["unknown receipt field"]),
    (lambda d: d.update(schema="attest.receipt/v9"), ["unsupported receipt schema"]),
])
def test_wrong_types_and_values_are_refused(project: Path, mutate, words: list[str]) -> None:
    for fmt in ("yaml", "json"):
        doc = good(project)
        mutate(doc)
        name = f"bad.{fmt}"
        text = json.dumps(doc) if fmt == "json" else yaml.safe_dump(doc)
        (project / name).write_text(text)
        rejected(project, name, *words)


def test_a_yaml_error_names_the_line(project: Path) -> None:
    (project / "syntax.yaml").write_text("schema: attest.receipt/v1\nsteps: [\n")
    line = rejected(project, "syntax.yaml", "YAML syntax error")
    assert "syntax.yaml:3" in line


def test_binary_and_empty_and_non_mapping_files_are_refused(project: Path) -> None:
    (project / "bin.yaml").write_bytes(b"\xff\xfe\x00garbage")
    rejected(project, "bin.yaml", "UTF-8")
    (project / "empty.yaml").write_text("")
    rejected(project, "empty.yaml", "empty")
    (project / "list.yaml").write_text("- 1\n- 2\n")
    rejected(project, "list.yaml", "expected a mapping")
    (project / "date.yaml").write_text((project / "good.yaml").read_text().replace(
        "timestamp: '", "timestamp: ").replace("Z'\n", "Z\n", 1))
    rejected(project, "date.yaml", "timestamp")


def test_a_hostile_dsse_envelope_is_refused(project: Path) -> None:
    (project / "env.json").write_text(json.dumps({"payloadType": "x", "payload": "%%%",
                                                  "signatures": []}))
    rejected(project, "env.json", "base64")


def test_missing_files_and_empty_globs_exit_2(project: Path) -> None:
    rejected(project, "nope.yaml", "no such file")
    r = attest("verify", "receipts/*.yaml", cwd=project)
    assert r.returncode == 2 and "no receipt matches" in r.stderr


def test_unusable_key_files_exit_2(project: Path) -> None:
    (project / "junk.pub").write_text("not a key\n")
    r = attest("verify", "good.yaml", "--public-key", "junk.pub", cwd=project)
    assert r.returncode == 2 and "junk.pub" in r.stderr and "Traceback" not in r.stderr
    r = attest("verify", "good.yaml", "--public-key", ".attest/keys/private.key", cwd=project)
    assert r.returncode == 2 and "private key" in r.stderr
    private_text = (project / ".attest" / "keys" / "private.key").read_text()
    assert private_text.splitlines()[1] not in r.stderr


def test_bad_run_options_exit_2_before_running_anything(project: Path) -> None:
    for args, words in ((["--sign", "--output", "r.txt"], ".yaml, .yml or .json"),
                        (["--sign", "--expires-in", "soon"], "--expires-in"),
                        (["--expires-in", "1d"], "add --sign")):
        shutil.rmtree(project / "out")
        r = attest("run", *args, cwd=project)
        assert r.returncode == 2, r.stderr
        assert words in r.stderr
        assert not (project / "out").exists()
        (project / "out").mkdir()


def test_a_wrong_value_in_a_yaml_receipt_names_its_line(project: Path) -> None:
    text = (project / "good.yaml").read_text()
    lines = text.splitlines()
    number = next(i for i, line in enumerate(lines, 1) if "exit_code:" in line)
    lines[number - 1] = lines[number - 1].replace("exit_code: 0", "exit_code: zero")
    (project / "line.yaml").write_text("\n".join(lines) + "\n")
    line = rejected(project, "line.yaml", "steps.0.exit_code")
    assert f"line.yaml:{number}:" in line


def test_a_receipt_that_cannot_be_written_fails_the_run_with_a_reason(project: Path) -> None:
    (project / "afile").write_text("in the way\n")
    r = attest("run", "--sign", "--output", "afile/receipt.yaml", cwd=project)
    assert r.returncode == 1
    assert "could not write the signed receipt" in r.stderr and "Traceback" not in r.stderr
    r = attest("run", "--sign", cwd=project, env={"ATTEST_SIGNING__EXPIRES_IN": "soon"})
    assert r.returncode == 2 and "signing.expires_in soon" in r.stderr
