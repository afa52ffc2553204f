"""The console entry point: what it leaves of the garbage collector, in-process and at exit."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest

from attest_cli.cli.entry import main


def test_in_process_main_leaves_the_collector_as_it_was(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    before = (gc.isenabled(), gc.get_threshold(), gc.get_freeze_count())
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out.startswith("attest ")
    assert (gc.isenabled(), gc.get_threshold(), gc.get_freeze_count()) == before


def test_the_console_entry_freezes_what_is_alive_so_the_exit_does_not_walk_it(
        tmp_path: Path) -> None:
    code = ("import gc, sys\nfrom attest_cli.cli.entry import main\n"
            "sys.argv = ['attest', '--version']\n"
            "try:\n    main()\nexcept SystemExit as exc:\n"
            "    print(exc.code, gc.get_freeze_count() > 1000)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert proc.stdout.splitlines()[-1] == "0 True", proc.stderr


@pytest.mark.parametrize("args", [["run", "-q"], ["-q", "--", "run"]],
                         ids=["quick parser", "typer"])
def test_a_ctrl_c_while_a_run_loads_is_one_line_and_exit_130(
        args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A second Ctrl-C (or one before the run's handler is installed) raises
    KeyboardInterrupt: both parsers' paths say so the same way."""
    from attest_cli.cli import run as cli_run
    from attest_cli.cli import run_action

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(run_action, "perform", interrupted)
    monkeypatch.setattr(cli_run, "perform", interrupted)
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 130
    assert capsys.readouterr().err == "attest: interrupted\n"


@pytest.mark.parametrize(("blocked", "expected"), [
    ("typer", "attest: error: the Python package 'typer' is not installed for "),
    ("attest_cli.cli.app", "attest: internal error: ModuleNotFoundError: "),
])
def test_a_missing_dependency_says_what_to_install_and_a_missing_own_module_is_a_bug(
        blocked: str, expected: str, tmp_path: Path) -> None:
    """``python -m attest_cli`` from a checkout never installed: typer is absent there.
    (``None`` in sys.modules makes an import fail as a missing module does.)"""
    code = (f"import sys\nsys.modules[{blocked!r}] = None\n"
            "from attest_cli.cli.entry import main\nsys.argv = ['attest', '--help']\nmain()\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.startswith(expected), proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr
