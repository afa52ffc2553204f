"""Helpers shared by the attestation tests (no tests here): a project signed once per
module, copied fresh for each test so that tests can tamper with it freely."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support import attest, write_pipeline


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
