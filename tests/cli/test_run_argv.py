"""`attest run` without Typer: the quick parser agrees with Typer, or leaves the line to it."""

from __future__ import annotations

import inspect
import subprocess
import sys
from enum import Enum
from pathlib import Path
from typing import Any

import pytest

from attest_cli.cli import app as cli_app
from attest_cli.cli import run as cli_run
from attest_cli.cli import run_argv
from attest_cli.cli.run_action import RunArgs
from attest_cli.context import AppContext
from attest_cli.record import fields_of


def _kind_of(param: Any) -> object:
    """What the quick parser's table should say for a click parameter."""
    kind = type(param.type).__name__
    if param.count:
        return run_argv.COUNT
    if param.is_flag:
        return run_argv.FLAG
    if param.multiple:
        return run_argv.MANY
    if kind == "IntRange":
        assert (param.type.min, param.type.max, param.type.min_open) == (1, None, False)
        return run_argv._at_least_one
    if kind == "FloatRange":
        assert (param.type.min, param.type.max, param.type.min_open) == (0.001, None, False)
        return run_argv._seconds
    if kind == "TyperPath":  # what _path copies: only "an existing path must be readable"
        t = param.type
        assert (t.exists, t.readable, t.writable, t.allow_dash, t.resolve_path, t.file_okay,
                t.dir_okay) == (False, True, False, False, False, True, True), param.name
        return run_argv._path
    if kind == "TyperChoice":
        return tuple(param.type.choices)
    assert kind == "StringParamType", kind
    return str


def _table_kind(kind: object) -> object:
    if isinstance(kind, type) and issubclass(kind, Enum):
        return tuple(member.value for member in kind)
    return kind


@pytest.mark.parametrize("which", ["root", "run"])
def test_the_tables_say_what_the_typer_declarations_say(which: str) -> None:
    group = cli_app.click_command()
    command = group if which == "root" else group.commands["run"]
    table = run_argv.ROOT_OPTIONS if which == "root" else run_argv.RUN_OPTIONS
    expected: dict[str, tuple[str, object]] = {}
    for param in command.params:
        if param.param_type_name != "option" or param.name in ("help", "version"):
            continue  # help and --version: the quick parser leaves them to Typer
        assert not param.secondary_opts, param.name  # no --x/--no-x pairs to mirror
        assert param.callback is None, param.name  # a check that only Typer would run
        for opt in param.opts:
            expected[opt] = (param.name, _kind_of(param))
        if param.envvar is not None:
            assert run_argv.ROOT_ENVVARS[param.name] == param.envvar
    assert {opt: (dest, _table_kind(kind)) for opt, (dest, kind) in table.items()} == expected
    if which == "run":  # RunArgs: one field per parameter of `run`, in the same order
        params = [p.name for p in command.params if p.name != "help"]
        assert params == list(fields_of(RunArgs))
        assert list(inspect.signature(RunArgs).parameters) == params  # and its __init__'s


def _typer_parse(args: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any],
                                                                              RunArgs]:
    """What Typer hands to the root context and to the run, for ``args``."""
    seen: dict[str, Any] = {}

    def root_context(**kwargs: Any) -> AppContext:
        kwargs.pop("given")
        seen["root"] = kwargs
        return AppContext()

    monkeypatch.setattr(cli_app, "root_context", root_context)
    monkeypatch.setattr(cli_app, "settle_collector", lambda: None)  # leave gc as it was
    monkeypatch.setattr(cli_run, "perform", lambda app, run: seen.__setitem__("run", run))
    assert cli_app.invoke(args) == 0
    return seen["root"], seen["run"]


EVERY_OPTION = [
    "run", "--no-cache", "--keep-going", "--sign", "--verify", "--policy", "p.yaml", "-o",
    "r.json", "--expires-in", "30d", "--report", "-", "--junit", "j.xml", "--trace",
    "--remote-exec", "--profile", "memory", "--profile-output=prof.bin", "--native",
    "--profile-steps", "--log-level", "debug", "--log-format", "json", "--metrics-file",
    "m.prom", "--raw-output", "--dry-run", "-f", "json", "--timeout", "2.5", "-p", "x.yaml",
    "--pipeline", "y.yaml"]


@pytest.mark.parametrize("args", [
    ["run"], ["run", "-j", "3"], ["run", "-j3"], ["run", "--parallel=4", "-j", "+5"],
    ["-v", "run", "-qv"], ["-vv", "-q", "run", "-vvj2"], ["-C", ".", "run", "build", "test"],
    ["run", "build", "-j2", "test"], ["run", "--step", "a", "--step=b", "c"],
    ["run", "--", "-x", "--help"], ["run", "-"], ["--config", "c.yaml", "run"],
    ["--config=c.yaml", "--working-dir=.", "run", "--timeout", "1e3"], EVERY_OPTION,
    ["run", "--log-level", "warn", "--log-level", "trace", "--format", "text"],
], ids=lambda a: " ".join(a)[:40])
@pytest.mark.parametrize("config_env", [None, "", "env.yaml"])
def test_a_plain_line_parses_as_typer_parses_it(
        args: list[str], config_env: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    environ = {} if config_env is None else {"ATTEST_CONFIG": config_env}
    monkeypatch.delenv("ATTEST_CONFIG", raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    quick = run_argv.parse_run(args, environ)
    assert quick is not None, "the quick parser should take this line"
    root, run = _typer_parse(args, monkeypatch)
    assert quick.root == root
    assert quick.run == run


@pytest.mark.parametrize("args", [
    [], ["--help"], ["--version"], ["-V", "run"], ["run", "--help"], ["run", "-h"],
    ["run", "-qh"], ["pipeline", "show"], ["run", "-j0"], ["run", "-j", "x"], ["run", "-j"],
    ["run", "-j", "-1"], ["run", "--timeout", "0"], ["run", "--timeout", "nan"],
    ["run", "--timeout", "inf"], ["run", "--profile", "CPU"], ["run", "--quiet=1"],
    ["run", "--bogus"], ["run", "-x"], ["run", "-p", ""], ["run", "--report="],
    ["run", "-p", "--no-cache"], ["run", "--config", "c.yaml"], ["-q", "--", "run"],
    ["--nope", "run"], ["run", "--no-cach"], ["-", "run"], ["-q", "-", "run"],
], ids=lambda a: " ".join(a) or "(nothing)")
def test_anything_unsure_is_left_to_typer(args: list[str]) -> None:
    assert run_argv.parse_run(args, {}) is None


def test_an_existing_path_that_cannot_be_read_is_left_to_typer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Typer's paths are ``readable=True``: one that exists but cannot be read is its usage
    error (os.access, as click asks it; root reads everything, so it is stubbed here)."""
    there = tmp_path / "report.json"
    there.write_text("{}")
    assert run_argv.parse_run(["run", "--report", str(there)], {}) is not None
    monkeypatch.setattr(run_argv.os, "access", lambda path, mode: False)
    assert run_argv.parse_run(["run", "--report", str(there)], {}) is None
    assert run_argv.parse_run(["run", "--report", str(tmp_path / "new.json")], {}) is not None
    assert run_argv.parse_run(["run"], {"ATTEST_CONFIG": str(there)}) is None


def test_shell_completion_is_left_to_typer() -> None:
    assert run_argv.parse_run(["run"], {"_ATTEST_COMPLETE": "bash_complete"}) is None
    assert run_argv.parse_run(["run"], {}) is not None


def test_attest_run_runs_without_importing_typer(tmp_path: Path) -> None:
    """The quick path end to end: a run, a failing run and a bad -C map to the same exit
    codes and one-line errors as through Typer, and neither Typer nor subprocess is
    imported (~10 ms and ~1 ms of every run's start-up)."""
    (tmp_path / "attest.yaml").write_text(
        'version: "0.1"\nname: q\nsteps:\n  ok:\n    run: "true"\n'
        '  bad:\n    run: "exit 3"\n    needs: [ok]\n')
    code = ("import sys\nfrom attest_cli.cli.entry import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit as exc:\n    code = exc.code\n"
            "print('exit', code, 'typer' in sys.modules, 'attest_cli.cli.app' in sys.modules,\n"
            "      'subprocess' in sys.modules)\n")

    def attest(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", code, *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)

    done = attest("-q", "run", "ok", "--no-cache")  # nor subprocess (its fallbacks' only)
    assert done.stdout.splitlines()[-1] == "exit 0 False False False", done.stderr
    failed = attest("run", "-q")
    assert failed.stdout.splitlines()[-1] == "exit 1 False False False", failed.stderr
    assert "attest: error: pipeline 'q' failed: bad" in failed.stderr
    nowhere = attest("-C", str(tmp_path / "nowhere"), "run")
    assert nowhere.stdout.splitlines()[-1] == "exit 2 False False False"
    assert nowhere.stderr == f"attest: error: -C {tmp_path / 'nowhere'}: not a directory\n"
    typer_said = attest("run", "-j0")  # left to Typer, which explains
    assert typer_said.stdout.splitlines()[-1].startswith("exit 2 True True")
    assert "'--parallel' / '-j': 0 is not in the range x>=1" in typer_said.stderr
