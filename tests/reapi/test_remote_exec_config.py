"""The keys of remote execution: per step (remote, platform, do_not_cache) and execution.*."""

from __future__ import annotations

from pathlib import Path

import pytest

from attest_cli.pipeline.identity import pipeline_hash
from attest_cli.pipeline.loader import load_pipeline
from tests.support import attest, write_pipeline


def test_step_keys_of_remote_execution_load(tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, """
        steps:
          build:
            run: make
            platform: {OSFamily: linux, ISA: x86-64, cores: 4, sandbox: true}
            do_not_cache: true
          deploy:
            run: ./deploy
            remote: false
          plain: {run: 'true'}
        """)
    steps = load_pipeline(path).steps
    assert steps["build"].platform == {"OSFamily": "linux", "ISA": "x86-64", "cores": "4",
                                       "sandbox": "true"}
    assert steps["build"].do_not_cache and steps["build"].remote
    assert not steps["deploy"].remote and not steps["deploy"].do_not_cache
    assert steps["plain"].platform == {} and steps["plain"].remote


def test_pipeline_hash_unchanged_when_the_keys_are_not_used(tmp_path: Path) -> None:
    """Receipts signed before these keys existed still match their pipeline."""
    plain = write_pipeline(tmp_path, "steps:\n  a: {run: 'true'}\n", "plain.yaml")
    spelled = write_pipeline(tmp_path, "steps:\n  a: {run: 'true', remote: true, "
                             "do_not_cache: false, platform: {}}\n", "spelled.yaml")
    moved = write_pipeline(tmp_path, "steps:\n  a: {run: 'true', platform: {OSFamily: linux}}"
                           "\n", "moved.yaml")
    assert pipeline_hash(load_pipeline(plain)) == pipeline_hash(load_pipeline(spelled))
    assert pipeline_hash(load_pipeline(plain)) != pipeline_hash(load_pipeline(moved))


@pytest.mark.parametrize(("body", "where", "what"), [
    ("    remote: sometimes\n", "attest.yaml:3: steps.a.remote", "expected true or false"),
    ("    do_not_cache: 1\n", "attest.yaml:3: steps.a.do_not_cache", "expected true or false"),
    ("    platform: linux\n", "attest.yaml:3: steps.a.platform", "expected a mapping"),
    ("    platform: {OSFamily: [linux]}\n", "attest.yaml:3: steps.a.platform.OSFamily",
     "expected a string"),
    ("    platfrom: {OSFamily: linux}\n", "attest.yaml:3: steps.a.platfrom",
     "did you mean 'platform'?"),
])
def test_bad_step_keys_are_one_located_line(tmp_path: Path, body: str, where: str,
                                            what: str) -> None:
    (tmp_path / "attest.yaml").write_text("steps:\n  a:\n" + body + "    run: 'true'\n")
    proc = attest("pipeline", "validate", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip()
    assert line.startswith(f"attest: error: {where}") and what in line, line
    assert "\n" not in line and "Traceback" not in line


@pytest.mark.parametrize(("text", "what"), [
    ("execution:\n  backend: grid\n", "attest.yaml:2: execution.backend: expected one of "
     "local, reapi"),
    ("execution:\n  required: perhaps\n", "attest.yaml:2: execution.required: expected true"),
    ("execution:\n  queue_timeout: soon\n", "attest.yaml:2: execution.queue_timeout: "
     "expected a duration"),
    ("execution:\n  endpont: grpc://x:1\n", "did you mean 'execution.endpoint'?"),
])
def test_execution_section_is_validated(tmp_path: Path, text: str, what: str) -> None:
    (tmp_path / "attest.yaml").write_text(text + "steps:\n  a: {run: 'true'}\n")
    proc = attest("run", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert what in proc.stderr and "Traceback" not in proc.stderr


def test_execution_keys_are_listed_with_defaults(tmp_path: Path) -> None:
    proc = attest("config", "list", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for key in ("execution.backend", "execution.endpoint", "execution.instance",
                "execution.headers", "execution.tls_ca", "execution.required",
                "execution.queue_timeout", "execution.max_wait"):
        assert key in proc.stdout, key


def test_a_local_run_imports_no_grpc_nor_the_reapi_client(tmp_path: Path) -> None:
    import subprocess
    import sys

    write_pipeline(tmp_path, "steps:\n  a: {run: 'true'}\n")
    code = ("import sys\nfrom attest_cli.cli.entry import main\nsys.argv = ['attest', 'run']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in "
            "('grpc', 'buildgrid') or m.startswith('attest_cli.reapi.')))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    assert "LOADED ['attest_cli.reapi.runhook']" in out.stdout, out.stdout + out.stderr
