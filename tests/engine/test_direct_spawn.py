"""A simple command is spawned without ``/bin/sh -c``, and behaves as the shell ran it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from attest_cli.engine.interfaces import StepRequest
from attest_cli.engine.launcher import StepLauncher, start_launcher
from attest_cli.engine.launcher_server import direct_argv
from attest_cli.engine.process import ProcessOutcome, ProcessRegistry, run_command


@pytest.fixture(params=["launcher", "attest"])
def spawner(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """Both spawn paths: through the step launcher, and attest's own fallback."""
    if request.param == "attest":
        yield None
        return
    launcher = start_launcher()
    assert launcher is not None
    yield launcher
    launcher.close()


def bin_dir(tmp_path: Path, **scripts: str) -> Path:
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    for name, text in scripts.items():
        (d / name).write_text(text)
        (d / name).chmod(0o755)
    return d


def run(command: str, cwd: Path, env: dict[str, str],
        launcher: StepLauncher | None) -> tuple[ProcessOutcome, str]:
    log = cwd / "step.log"
    outcome = run_command(command, cwd=cwd, env=env, log_path=log, timeout=None,
                          registry=ProcessRegistry(), launcher=launcher)
    return outcome, log.read_text() if log.exists() else ""


def test_a_simple_command_runs_without_a_shell_in_between(tmp_path: Path, spawner) -> None:  # type: ignore[no-untyped-def]
    d = bin_dir(tmp_path, parent="#!/bin/sh\ntr -d '\\n' < /proc/$PPID/comm; echo\n")
    env = {"PATH": f"{d}:{os.environ['PATH']}"}
    outcome, out = run("parent", tmp_path, env, spawner)
    assert outcome.exit_code == 0
    assert out.strip() not in ("sh", "dash")  # spawned by the launcher or attest itself
    # anything with shell syntax still goes through the shell
    _, out = run("parent; true", tmp_path, env, spawner)
    assert out.strip() == "sh"


def test_the_direct_spawn_keeps_what_the_shell_did(tmp_path: Path, spawner) -> None:  # type: ignore[no-untyped-def]
    d = bin_dir(tmp_path, noshebang="echo ran as a script\nexit 5\n",
                args="#!/bin/sh\nprintf '[%s]' \"$@\"; echo\n")
    path = f"{d}:{os.environ['PATH']}"
    # dash exports PWD, the real directory, when the inherited one does not name it
    _, out = run("env", tmp_path, {"PATH": path, "PWD": "/nonexistent"}, spawner)
    assert f"PWD={Path(tmp_path).resolve()}" in out.splitlines()
    # words split on runs of spaces, as the shell does
    _, out = run("args a  b,c  d=e", tmp_path, {"PATH": path}, spawner)
    assert out.strip() == "[a][b,c][d=e]"
    # a file without #! is run by the shell as a script (the exec fails with ENOEXEC)
    outcome, out = run("noshebang", tmp_path, {"PATH": path}, spawner)
    assert (outcome.exit_code, out.strip()) == (5, "ran as a script")
    # a missing command is still the shell's 127 and message
    outcome, out = run("no-such-command-xyz arg", tmp_path, {"PATH": path}, spawner)
    assert outcome.exit_code == 127 and "not found" in out


@pytest.mark.parametrize("command", [
    "echo $HOME", "a=b cp x y", "cd sub", "cp 'a b' c", "cp a b > c", "ls *.txt", "cp ~/a b",
    "exit 3", "true && false", "", "   ", "ls\tx", "test -f x", "kill 1",
])
def test_shell_syntax_and_builtins_need_the_shell(command: str) -> None:
    assert direct_argv(command, {"PATH": os.environ["PATH"]}) is None


def test_plain_words_are_looked_up_in_the_steps_path(tmp_path: Path) -> None:
    d = bin_dir(tmp_path, tool="#!/bin/sh\n")
    (d / "notexec").write_text("")
    (d / "adir").mkdir()
    path = f"{tmp_path}/missing:{d}:/usr/bin:/bin"
    assert direct_argv("tool -x a/b", {"PATH": path}) == (f"{d}/tool", ["tool", "-x", "a/b"])
    assert direct_argv("notexec", {"PATH": path}) is None
    assert direct_argv("adir", {"PATH": path}) is None
    assert direct_argv("tool", {}) is None  # no PATH: the shell's default applies
    assert direct_argv("./x y", {}) == ("./x", ["./x", "y"])
    assert direct_argv("true", {"PATH": path}) is not None


def test_path_entries_relative_empty_and_with_a_trailing_slash(tmp_path: Path) -> None:
    """As dash looks up: a relative entry (and an empty one, the directory itself) from
    the step's directory, an absolute one as written."""
    d = bin_dir(tmp_path, tool="#!/bin/sh\n")
    assert direct_argv("tool", {"PATH": f"/nowhere:{d}/"}) == (f"{d}/tool", ["tool"])
    assert direct_argv("tool", {"PATH": "bin"}, str(tmp_path)) == \
        (f"{tmp_path}/bin/tool", ["tool"])
    assert direct_argv("tool", {"PATH": "/nowhere:"}, str(d)) == (f"{d}/tool", ["tool"])
    assert direct_argv("tool", {"PATH": "/nowhere:elsewhere"}, str(tmp_path)) is None


def test_a_step_run_by_the_runner_is_spawned_directly(tmp_path: Path) -> None:
    from attest_cli.engine.step_runner import ProcessStepRunner

    d = bin_dir(tmp_path, parent="#!/bin/sh\ntr -d '\\n' < /proc/$PPID/comm; echo\n")
    runner = ProcessStepRunner()
    outcome = runner.run(StepRequest(
        step="s", command="parent", cwd=tmp_path, env={"PATH": f"{d}:/usr/bin:/bin"},
        log_path=tmp_path / "s.log", timeout=None, mask=lambda s: s,
        on_line=lambda _line: None))
    assert outcome.exit_code == 0
    assert (tmp_path / "s.log").read_text().strip() not in ("sh", "dash")
