"""``attest init``: a working sample, no settings that shadow attest.yaml, attest's state
kept out of git (issue 15, item 7)."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import yaml

from tests.support import attest, require_binary

STATE = [".attest/keys/private.key", ".attest/keys/public.key", ".attest/keys/trusted/a.pub",
         ".attest/cache/objects/ab/cdef", ".attest/history.db", ".attest/history.db-wal",
         ".attest/logs/run-1/build.log", ".attest/runs/run-1.json",
         ".attest/receipts/receipt_1.yaml", ".attest/traces.jsonl",
         ".attest/profiles/cpu.prof", ".attest/benchmarks/v1.json",
         ".attest/cache-stat-index.json"]


def git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_binary("git"), *args], cwd=root, capture_output=True,
                          text=True, timeout=30)


def ignored(root: Path, path: str) -> bool:
    r = git(root, "check-ignore", "-q", "--no-index", path)
    assert r.returncode in (0, 1), r.stderr
    return r.returncode == 0


def test_init_writes_no_setting_and_the_sample_runs(project: Path) -> None:
    r = attest("init", cwd=project)
    assert r.returncode == 0, r.stderr
    config = project / ".attest" / "config.yaml"
    assert yaml.safe_load(config.read_text()) is None  # comments only: defaults from the schema
    assert "attest config set" in config.read_text()
    shown = attest("config", "show", "--origin", cwd=project).stdout
    assert "project" not in shown  # no value comes from the project file
    run = attest("run", cwd=project)
    assert run.returncode == 0, run.stderr
    assert (project / "build" / "greeting.txt").read_text() == "hello from attest\n"


def test_git_ignores_attest_state_but_not_the_project_files(project: Path) -> None:
    assert git(project, "init", "-q").returncode == 0
    r = attest("init", cwd=project)
    assert r.returncode == 0, r.stderr
    assert ".gitignore" in r.stdout
    for path in STATE:
        assert ignored(project, path), path
    for path in ("attest.yaml", ".attest/config.yaml", ".gitignore", "build/greeting.txt"):
        assert not ignored(project, path), path
    # after a real signed run, only the project's own files are left for git to see
    run = attest("run", "--sign", cwd=project)
    assert run.returncode == 0, run.stderr
    assert (project / ".attest" / "keys" / "private.key").is_file()
    status = git(project, "status", "--porcelain", "--untracked-files=all").stdout.splitlines()
    assert sorted(status) == ["?? .attest/config.yaml", "?? .gitignore", "?? attest.yaml",
                              "?? build/greeting.txt"]


def test_an_existing_gitignore_is_appended_to_once(project: Path) -> None:
    assert git(project, "init", "-q").returncode == 0
    gitignore = project / ".gitignore"
    gitignore.write_text("node_modules/\n*.pyc")  # no final newline
    gitignore.chmod(0o640)
    assert attest("init", cwd=project).returncode == 0
    text = gitignore.read_text()
    assert stat.S_IMODE(gitignore.stat().st_mode) == 0o640  # replaced, mode kept
    assert text.startswith("node_modules/\n*.pyc\n")
    assert ignored(project, "x.pyc") and ignored(project, "node_modules/a")
    assert ignored(project, ".attest/keys/private.key")
    refused = attest("init", cwd=project)
    assert refused.returncode == 2 and gitignore.read_text() == text
    forced = attest("init", "--force", cwd=project)
    assert forced.returncode == 0, forced.stderr
    assert gitignore.read_text() == text  # no duplicated lines
    assert ".gitignore" not in forced.stdout


def test_a_gitignore_that_already_ignores_attest_state_is_left_alone(project: Path) -> None:
    gitignore = project / ".gitignore"
    gitignore.write_text("# ours\n.attest/\n")
    assert attest("init", cwd=project).returncode == 0
    assert gitignore.read_text() == "# ours\n.attest/\n"
