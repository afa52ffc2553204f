"""The error tree of attest.

Every error carries the exit code it maps to, so that ``cli/app.py`` is the only place
that turns an exception into a message and an exit status (one error boundary).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit statuses; their meanings are part of the CLI contract (SPEC §2)."""

    OK = 0
    FAILURE = 1  # the pipeline, a verification, a gate or a health check failed
    USAGE = 2  # bad usage, configuration or input
    INTERRUPTED = 130  # SIGINT
    TERMINATED = 143  # SIGTERM


class AttestError(Exception):
    """Base of every error the CLI reports as one line instead of a traceback."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, *, exit_code: ExitCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class UsageError(AttestError):
    """Wrong flags or arguments."""


class ConfigError(AttestError):
    """A configuration key or value is wrong."""


class InputError(AttestError):
    """A file given to attest (pipeline, receipt, policy, profile...) is unusable.

    ``location`` is ``file:line`` (or just ``file``) and is prefixed to the message so that
    every such error names where the problem is.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 key: str | None = None) -> None:
        self.path = path
        self.line = line
        self.key = key
        where = ""
        if path:
            where = f"{path}:{line}" if line else path
        text = message
        if key:
            text = f"{key}: {text}"
        if where:
            text = f"{where}: {text}"
        super().__init__(text)


class NotAvailableError(AttestError):
    """A command that is registered but not built yet: it says so rather than pretending."""


class PipelineFailed(AttestError):
    """The pipeline ran and a step failed (exit 1)."""

    exit_code = ExitCode.FAILURE


class Interrupted(AttestError):
    """The run was stopped by a signal; the exit code is 128 + the signal number."""

    def __init__(self, signum: int) -> None:
        code = ExitCode.INTERRUPTED if signum == 2 else ExitCode.TERMINATED
        super().__init__(f"interrupted by signal {signum}", exit_code=code)
        self.signum = signum
