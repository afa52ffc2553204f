"""Hostile and damaged receipts: one line naming the problem, exit 2, never a traceback."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
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


def test_a_receipt_that_cannot_be_written_is_refused_before_the_run(project: Path) -> None:
    (project / "afile").write_text("in the way\n")
    shutil.rmtree(project / "out")
    r = attest("run", "--sign", "--output", "afile/receipt.yaml", cwd=project)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == "attest: error: --output afile/receipt.yaml: cannot write: " \
        "Not a directory"
    assert not (project / "out").exists()  # checked while parsing: no step ran
    r = attest("run", "--sign", cwd=project, env={"ATTEST_SIGNING__EXPIRES_IN": "soon"})
    assert r.returncode == 2 and "signing.expires_in soon" in r.stderr


# Memory budget and duplicate keys (issue 12, item 12): docs/receipts.md

RSS_BOUND = 1024 * 2**20  # generous: the budget keeps a refused 50 MB file far below this
SAFETY_AS = 3 * 2**30  # address-space cap so a regression fails instead of swapping the host


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (SAFETY_AS, SAFETY_AS))


def verify_measured(project: Path, name: str) -> tuple[int, str, int]:
    """Run ``attest verify NAME``; returns (exit status, stderr, peak RSS in bytes)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTEST_")}
    env["XDG_CONFIG_HOME"] = str(project / ".xdg")
    proc = subprocess.Popen([sys.executable, "-m", "attest_cli", "verify", name], cwd=project,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=_limit_memory)
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, err, usage.ru_maxrss * 1024  # ru_maxrss is KiB on Linux


def _fill(path: Path, head: str, item: str, tail: str, size: int) -> None:
    count = (size - len(head) - len(tail)) // len(item)
    with path.open("w") as fh:
        fh.write(head)
        fh.write(item * count)
        fh.write(tail)


def test_a_51_mb_yaml_receipt_is_refused_within_a_memory_bound(project: Path) -> None:
    name = "huge.yaml"
    text = (project / "good.yaml").read_text()
    _fill(project / name, text + "padding:\n", "- [a, b]\n", "", 51_000_000)
    code, err, peak = verify_measured(project, name)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "values" in lines[0] and name in lines[0], lines
    assert peak < RSS_BOUND, f"peak RSS {peak / 2**20:.0f} MiB"


def test_a_51_mb_json_receipt_is_refused_within_a_memory_bound(project: Path) -> None:
    name = "huge.json"
    _fill(project / name, '{"padding": [', "{},", "{}]}", 51_000_000)
    code, err, peak = verify_measured(project, name)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "values" in lines[0] and name in lines[0], lines
    assert peak < RSS_BOUND, f"peak RSS {peak / 2**20:.0f} MiB"


def test_deep_nesting_is_refused_with_one_line(project: Path) -> None:
    (project / "deep.json").write_text('{"a": ' + "[" * 500 + "]" * 500 + "}")
    (project / "deep.yaml").write_text("a: " + "[" * 500 + "]" * 500 + "\n")
    for name in ("deep.json", "deep.yaml"):
        r = attest("verify", name, cwd=project)
        assert r.returncode == 2, r.stderr
        assert r.stderr.count("\n") == 1 and "nested more than 100" in r.stderr, r.stderr


def test_a_yaml_receipt_with_two_status_keys_fails_naming_key_and_line(project: Path) -> None:
    text = (project / "good.yaml").read_text()
    lines = text.splitlines(keepends=True)
    at = lines.index("  status: success\n")
    lines.insert(at, "  status: failure\n")  # a reader sees failure; the parser kept success
    (project / "dup.yaml").write_text("".join(lines))
    r = attest("verify", "dup.yaml", cwd=project)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.strip() == \
        f"attest: error: dup.yaml:{at + 2}: steps.0.status: duplicate key 'status'"


def test_a_json_receipt_with_two_status_keys_fails_naming_the_key(project: Path) -> None:
    doc = yaml.safe_load((project / "good.yaml").read_text())
    text = json.dumps(doc, indent=2)
    text = text.replace('"status": "success"', '"status": "failure",\n  "status": "success"', 1)
    (project / "dup.json").write_text(text)
    r = attest("verify", "dup.json", cwd=project)
    assert r.returncode == 2, (r.stdout, r.stderr)
    dup_line = text.splitlines().index('  "status": "success",') + 1
    assert r.stderr.strip() == f"attest: error: dup.json:{dup_line}: status: duplicate key 'status'"
    clean = json.dumps(doc, indent=2)
    steps = clean.index('"status": "success"', clean.index('"steps"'))
    nested = clean[:steps] + '"status": "failure", ' + clean[steps:]
    (project / "dup2.json").write_text(nested)
    r = attest("verify", "dup2.json", cwd=project)
    dup_line = nested.count("\n", 0, steps) + 1
    assert r.stderr.strip() == \
        f"attest: error: dup2.json:{dup_line}: steps.0.status: duplicate key 'status'"


def test_fifos_and_devices_as_receipt_policy_or_key_are_refused_without_blocking(
        project: Path) -> None:
    os.mkfifo(project / "fifo")
    for args in (["fifo"], ["/dev/zero"], ["good.yaml", "--policy", "fifo"],
                 ["good.yaml", "--public-key", "fifo"], ["good.yaml", "--public-key",
                                                         "/dev/zero"]):
        r = attest("verify", *args, cwd=project, timeout=20)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert r.stderr.count("\n") == 1 and "only regular files are read" in r.stderr, r.stderr


def test_receipt_names_with_glob_characters_and_a_bracketed_working_directory(
        tmp_path: Path) -> None:
    """A receipt named ``r[1].json`` is that file, not the pattern ``r1.json``; and a
    working directory named ``proj[1]`` does not turn every relative pattern into a miss."""
    from attest_cli.attestation.standalone import expand_receipts
    from attest_cli.context import AppContext
    from attest_cli.errors import UsageError

    work = tmp_path / "proj[1]"
    (work / "receipts").mkdir(parents=True)
    for name in ("r[1].json", "r1.json", "a.json", "b.json"):
        (work / "receipts" / name).write_text("{}")
    ctx = AppContext(workdir=work, environ={})
    assert expand_receipts(ctx, ["receipts/r[1].json"]) == [work / "receipts" / "r[1].json"]
    assert expand_receipts(ctx, ["receipts/[ab].json"]) == [work / "receipts" / "a.json",
                                                            work / "receipts" / "b.json"]
    absolute = str(tmp_path).replace("[", "[[]") + "/proj[[]1]/receipts/r?.json"
    assert expand_receipts(ctx, [absolute]) == [work / "receipts" / "r1.json"]
    with pytest.raises(UsageError, match="no receipt matches"):
        expand_receipts(ctx, ["receipts/*.missing"])
