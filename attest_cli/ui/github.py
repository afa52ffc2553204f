"""GitHub Actions workflow commands (``::error file=F,line=N::message``), escaped as the runner
expects, with file paths the runner can attach to the repository's files.

The runner reads workflow commands from stdout; a property value or message holding ``%``,
a newline, ``:`` or ``,`` would otherwise end the command early or make a second one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from attest_cli.errors import AttestError, InputError, Interrupted, PipelineFailed
from attest_cli.escaping import escape_control


def active(environ: Mapping[str, str]) -> bool:
    return environ.get("GITHUB_ACTIONS") == "true"


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def repo_path(path: str | os.PathLike[str], environ: Mapping[str, str],
              default: str | None = None) -> str:
    """``path`` relative to ``$GITHUB_WORKSPACE`` (the checkout) when it lies inside it, so the
    annotation lands on the file in the pull request; else ``default`` (or ``path``)."""
    workspace = environ.get("GITHUB_WORKSPACE")
    if workspace:
        try:
            return Path(path).resolve().relative_to(Path(workspace).resolve()).as_posix()
        except (ValueError, OSError):
            pass
    return default if default is not None else os.fspath(path)


def command(name: str, message: str, *, file: str | None = None, line: int | None = None,
            title: str | None = None) -> str:
    """One workflow command line (without the newline); control characters in names and
    messages are escaped first, as everywhere attest prints them."""
    props = []
    if file:
        props.append(f"file={_property(escape_control(file))}")
        if line:
            props.append(f"line={int(line)}")
    if title:
        props.append(f"title={_property(escape_control(title))}")
    head = f"::{name} {','.join(props)}" if props else f"::{name}"
    return f"{head}::{_data(escape_control(message))}"


def error_annotation(exc: AttestError, message: str, environ: Mapping[str, str]) -> str | None:
    """The ``::error`` line for an error that ended a command under GitHub Actions, with the
    file and line of a bad pipeline or config file; None outside Actions, and for a failed
    pipeline or an interrupted run (their steps were annotated by the view already)."""
    if not active(environ) or isinstance(exc, PipelineFailed | Interrupted):
        return None
    path = getattr(exc, "path", None) if isinstance(exc, InputError) else None
    line = getattr(exc, "line", None) if path else None
    return command("error", message, file=repo_path(path, environ, default=path)
                   if path else None, line=line)
