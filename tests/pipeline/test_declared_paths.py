"""Declared inputs and outputs stay inside the workspace, and outputs never cover attest's state."""

from __future__ import annotations

from pathlib import Path

import pytest

from attest_cli.pathspec import covers
from tests.support import attest, write_pipeline

STEP = """
steps:
  build:
    run: mkdir -p out && echo built > out/a.txt && echo ran > ran.txt
    {key}:
      - out/
      - "{pattern}"
"""

STATE_OUTPUTS = ["./", ".", ".attest", ".attest/", ".attest/keys", "./.attest/keys/",
                 ".*", ".att*/**", "./.*", "**/.attest", "**/.attest/**", "*/../.attest",
                 ".attest/*.key"]


def located_error(proc: object, where: str, what: str) -> None:
    assert proc.returncode == 2, proc.stderr  # type: ignore[attr-defined]
    lines = proc.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"attest: error: {where}: "), lines[0]
    assert what in lines[0], lines[0]


@pytest.mark.parametrize("pattern", STATE_OUTPUTS)
@pytest.mark.parametrize("command", [["run"], ["pipeline", "validate"]])
def test_outputs_covering_the_state_directory_are_refused_at_load(
        project: Path, pattern: str, command: list[str]) -> None:
    write_pipeline(project, STEP.format(key="outputs", pattern=pattern))
    proc = attest(*command, cwd=project)
    located_error(proc, "attest.yaml:6: steps.build.outputs.1", "")
    assert ".attest" in proc.stderr or "inside the project" in proc.stderr
    assert not (project / "ran.txt").exists()  # refused before anything ran
    assert "Traceback" not in proc.stderr


def test_whole_project_output_never_reaches_the_signing_key(project: Path) -> None:
    """The reported attack: ``outputs: ["./"]`` stored .attest/keys/private.key in the cache."""
    write_pipeline(project, STEP.format(key="outputs", pattern="./"))
    proc = attest("run", "--sign", cwd=project)
    located_error(proc, "attest.yaml:6: steps.build.outputs.1",
                  "outputs may not cover attest's state directory .attest/")
    assert not (project / ".attest" / "cache").exists()


@pytest.mark.parametrize("pattern", ["**", "./**", "*", "**/*.txt", "dist/**", "out/.attest",
                                     "src/.*"])
def test_outputs_that_cannot_reach_the_state_directory_are_accepted(project: Path,
                                                                    pattern: str) -> None:
    write_pipeline(project, STEP.format(key="outputs", pattern=pattern))
    proc = attest("pipeline", "validate", cwd=project)
    assert proc.returncode == 0, proc.stderr


def test_a_configured_state_path_inside_an_output_is_refused(project: Path) -> None:
    write_pipeline(project, """
cache:
  dir: build/cache
steps:
  build:
    run: mkdir -p build && echo x > build/x && echo ran > ran.txt
    outputs: [build/]
""")
    for command in (["run"], ["pipeline", "validate"]):
        proc = attest(*command, cwd=project)
        located_error(proc, "attest.yaml:6: steps.build.outputs.0",
                      "cache.dir (build/cache)")
    assert not (project / "ran.txt").exists()


@pytest.mark.parametrize("pattern", ["../secret.txt", "/etc/passwd", "src/../../x",
                                     "src/../.."])
@pytest.mark.parametrize("key", ["inputs", "outputs"])
def test_declarations_outside_the_workspace_are_refused_at_load(project: Path, key: str,
                                                                pattern: str) -> None:
    (project.parent / "secret.txt").write_text("s\n")
    write_pipeline(project, STEP.format(key=key, pattern=pattern))
    proc = attest("run", cwd=project)
    located_error(proc, f"attest.yaml:6: steps.build.{key}.1", "inside the project")
    assert not (project / "ran.txt").exists()


def test_restore_side_globs_never_cover_hidden_names_the_expansion_skips() -> None:
    """``covers`` (checking a cache entry's paths) agrees with ``expand`` (what is stored):
    a ``*``/``**`` component does not match a name starting with a dot."""
    assert not covers(["**"], ".attest/keys/private.key")
    assert not covers(["*"], ".attest")
    assert not covers(["**/*.key"], ".attest/keys/private.key")
    assert covers(["**"], "out/.hidden")  # inside a matched directory everything counts
    assert covers(["**/*.o"], "a/b.o")
    assert covers([".*"], ".env")


def test_a_restore_never_writes_into_the_state_directory(tmp_path: Path) -> None:
    from attest_cli.cache.manifest import OutputFile
    from attest_cli.cache.restore import UnsafeRestore, restore_files
    from attest_cli.digest import bytes_digest

    with pytest.raises(UnsafeRestore, match="state directory"):
        restore_files(tmp_path, [OutputFile(path=".attest/keys/private.key", kind="file",
                                            digest=bytes_digest(b"k"), size=1)],
                      lambda f: b"k")
    assert not (tmp_path / ".attest").exists()
