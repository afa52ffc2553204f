"""A plain ``attest run`` command line, parsed without Typer.

Importing Typer (and click, ``subprocess``, ``platform``...) and building the command cost
~10 ms of every ``attest run``, a tenth of a small pipeline's whole run. Most runs are a
few flags, so :func:`parse_run` reads ``attest [ROOT OPTIONS] run [OPTIONS] [STEP]...``
itself, exactly as click would, and gives up - returns None, and Typer parses the line -
on anything it is not sure of: help, ``--version``, shell completion, an unknown option, a
value that does not convert or is out of range (click words that error), an existing path
that cannot be read, an empty value, or a value that looks like an option. Whatever it
accepts, Typer would have passed the same values (tests compare the two on many command
lines, and the option tables below against the Typer declarations in cli/app.py and
cli/run.py).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from enum import Enum
from pathlib import Path
from typing import Any

from attest_cli.cli.run_action import LogFormat, LogLevel, PlanFormat, Profile, RunArgs
from attest_cli.record import Record

FLAG = "flag"  # True when present
COUNT = "count"  # +1 each time (-vv)
MANY = "many"  # repeatable: each value appended


def _path(value: str) -> Path:
    """As Typer's ``Path`` (``readable=True``): a path that exists must be readable."""
    if os.path.exists(value) and not os.access(value, os.R_OK):
        raise ValueError(value)
    return Path(value)


def _at_least_one(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


def _seconds(value: str) -> float:
    number = float(value)
    if not (math.isfinite(number) and number >= 0.001):
        raise ValueError(value)
    return number


def _choice(enum: type[Enum]) -> Callable[[str], Enum]:
    return enum  # Enum("cpu") is the member; anything else raises ValueError


# option -> (parameter, what it takes): a converter of its one value, or FLAG, COUNT
Spec = tuple[str, Any]

ROOT_OPTIONS: dict[str, Spec] = {
    "--verbose": ("verbose", COUNT), "-v": ("verbose", COUNT),
    "--quiet": ("quiet", FLAG), "-q": ("quiet", FLAG),
    "--config": ("config_file", _path),
    "--working-dir": ("working_dir", _path), "-C": ("working_dir", _path),
}
ROOT_ENVVARS = {"config_file": "ATTEST_CONFIG"}  # click: used when set and not empty

RUN_OPTIONS: dict[str, Spec] = {
    "--pipeline": ("pipeline", _path), "-p": ("pipeline", _path),
    "--parallel": ("parallel", _at_least_one), "-j": ("parallel", _at_least_one),
    "--step": ("step", MANY),
    "--dry-run": ("dry_run", FLAG),
    "--format": ("plan_format", _choice(PlanFormat)), "-f": ("plan_format", _choice(PlanFormat)),
    "--no-cache": ("no_cache", FLAG),
    "--keep-going": ("keep_going", FLAG),
    "--timeout": ("timeout", _seconds),
    "--sign": ("sign", FLAG),
    "--verify": ("verify", FLAG),
    "--policy": ("policy", _path),
    "--output": ("output", _path), "-o": ("output", _path),
    "--expires-in": ("expires_in", str),
    "--report": ("report", _path),
    "--junit": ("junit", _path),
    "--trace": ("trace", FLAG),
    "--remote-exec": ("remote_exec", FLAG),
    "--profile": ("profile", _choice(Profile)),
    "--profile-output": ("profile_output", _path),
    "--native": ("native", FLAG),
    "--profile-steps": ("profile_steps", FLAG),
    "--log-level": ("log_level", _choice(LogLevel)),
    "--log-format": ("log_format", _choice(LogFormat)),
    "--metrics-file": ("metrics_file", _path),
    "--verbose": ("verbose", COUNT), "-v": ("verbose", COUNT),
    "--quiet": ("quiet", FLAG), "-q": ("quiet", FLAG),
    "--raw-output": ("raw_output", FLAG),
}


class _Unsure(Exception):
    """The line is one for Typer to parse (and, if it is wrong, to explain)."""


class QuickRun(Record):
    """A parsed ``attest run`` line: the root options (:func:`~attest_cli.cli.common.
    root_context`'s arguments) and the run's."""

    root: dict[str, Any]
    run: RunArgs

    def __init__(self, root: dict[str, Any] | None = None, run: RunArgs | None = None) -> None:
        self.root = {} if root is None else root
        self.run = RunArgs() if run is None else run


def parse_run(args: list[str], environ: Mapping[str, str]) -> QuickRun | None:
    """``args`` (after the program name) as click would parse them, or None to let Typer."""
    if "_ATTEST_COMPLETE" in environ:  # click's shell completion: Typer answers
        return None
    try:
        return _parse(args, environ)
    except (_Unsure, ValueError):
        return None


def _parse(args: list[str], environ: Mapping[str, str]) -> QuickRun:
    root: dict[str, Any] = {"verbose": 0, "quiet": False, "config_file": None,
                            "working_dir": None}
    rest = list(args)
    while rest and rest[0].startswith("-"):  # the group's options come before the command
        _option(rest.pop(0), rest, ROOT_OPTIONS, root)
    if not rest or rest.pop(0) != "run":
        raise _Unsure
    if root["config_file"] is None and environ.get(ROOT_ENVVARS["config_file"]):
        root["config_file"] = _path(environ[ROOT_ENVVARS["config_file"]])
    values: dict[str, Any] = {}
    steps: list[str] = []
    while rest:
        token = rest.pop(0)
        if token == "--":  # the rest are steps, whatever they look like
            steps += rest
            break
        if token.startswith("-") and token != "-":
            _option(token, rest, RUN_OPTIONS, values)
        else:  # click takes arguments between options too
            steps.append(token)
    run = RunArgs(**values)
    run.step_names = steps or None
    return QuickRun(root=root, run=run)


def _option(token: str, rest: list[str], table: dict[str, Spec], into: dict[str, Any]) -> None:
    """Apply one option token (``--name``, ``--name=value``, ``-x``, ``-xVALUE``, ``-qv``),
    taking its value from ``rest`` when it is the next word."""
    if token == "-":  # an argument where the command's name belongs: Typer says so
        raise _Unsure
    if token.startswith("--"):
        name, eq, attached = token.partition("=")
        _apply(name, attached if eq else None, rest, table, into)
        return
    for i, letter in enumerate(token[1:], start=1):  # a cluster of short options
        spec = table.get(f"-{letter}")
        if spec is None:
            raise _Unsure
        if spec[1] in (FLAG, COUNT):
            _apply(f"-{letter}", None, rest, table, into)
        else:  # one that takes a value ends the cluster: the rest of it is the value
            _apply(f"-{letter}", token[i + 1:] or None, rest, table, into)
            return


def _apply(name: str, attached: str | None, rest: list[str], table: dict[str, Spec],
           into: dict[str, Any]) -> None:
    spec = table.get(name)
    if spec is None:  # unknown, or help/version: Typer's
        raise _Unsure
    dest, kind = spec
    if kind in (FLAG, COUNT):
        if attached is not None:  # --quiet=yes: click refuses it
            raise _Unsure
        into[dest] = into.get(dest, 0) + 1 if kind == COUNT else True
        return
    if attached is None:
        if not rest:
            raise _Unsure  # click: "option requires an argument"
        attached = rest.pop(0)
    if not attached or (attached.startswith("-") and attached != "-"):  # "-": a stream
        raise _Unsure  # empty, or an option taken as a value: Typer's call
    if kind == MANY:
        into.setdefault(dest, []).append(attached)
    else:
        into[dest] = kind(attached)
