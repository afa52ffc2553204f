"""Helpers shared by the attestation tests (no tests here): a project signed once per
module, copied fresh for each test so that tests can tamper with it freely; and a scrape
of the verification metrics from a real ``attest serve``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support import attest, free_port, wait_for_port, write_pipeline


def signed_template(factory: pytest.TempPathFactory, pipeline: str, *run_args: str,
                    files: dict[str, str] | None = None) -> Path:
    """A project that has run ``attest run --sign RUN_ARGS`` once."""
    root = factory.mktemp("signed") / "proj"
    root.mkdir()
    write_pipeline(root, pipeline)
    for name, text in (files or {}).items():
        (root / name).write_text(text)
    r = attest("run", "--sign", *run_args, cwd=root)
    assert r.returncode == 0, r.stderr
    return root


def fresh_copy(template: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "proj"
    shutil.copytree(template, dest, symlinks=True)
    return dest


def signed_project_fixtures(pipeline: str, *run_args: str,
                            files: dict[str, str] | None = None) -> tuple[Any, Any]:
    """A module's ``template`` (signed once per module) and ``signed`` (a fresh copy of it
    per test) fixtures: ``template, signed = signed_project_fixtures(PIPELINE, ...)``."""

    @pytest.fixture(scope="module")
    def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
        return signed_template(tmp_path_factory, pipeline, *run_args, files=files)

    @pytest.fixture
    def signed(template: Path, tmp_path: Path) -> Path:
        return fresh_copy(template, tmp_path)

    return template, signed


PIPELINE = """
version: "0.1"
name: counted
steps:
  build:
    run: mkdir -p dist && echo built > dist/app.txt
    outputs: [dist/]
"""


def scrape(project: Path) -> dict[str, float]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATTEST_", "OTEL_"))}
    env["XDG_CONFIG_HOME"] = str(project / ".xdg")
    proc = subprocess.Popen([sys.executable, "-m", "attest_cli", "serve", "--endpoint",
                             f"127.0.0.1:{port}"], cwd=project, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    try:
        assert wait_for_port(port, timeout=30), "attest serve did not start"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            text = resp.read().decode()
    finally:
        proc.terminate()
        proc.wait(10)
    out = {}
    for line in text.splitlines():
        if line.startswith(("attest_verifications_total", "attest_verification_failures_total",
                            "attest_verification_duration_seconds_count")):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out

