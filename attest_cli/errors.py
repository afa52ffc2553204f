"""The error tree of attest.

Every error carries the exit code it maps to, so that ``cli/entry.py`` is the only place
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


def disk_full(exc: BaseException) -> DiskFull | None:
    """The :class:`DiskFull` an exception means, looking through its causes, or ``None``.

    A full disk reaches attest as ``OSError(ENOSPC)`` (or ``EDQUOT``) from any write, or as
    SQLite's "database or disk is full"; wherever it is raised in a run, the error boundary
    turns it into one line and exit 1 instead of an internal error.
    """
    import errno

    codes = {errno.ENOSPC, getattr(errno, "EDQUOT", 122)}
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, DiskFull):
            return cur
        if isinstance(cur, OSError) and cur.errno in codes:
            where = f" writing {cur.filename}" if cur.filename else ""
            return DiskFull(f"no space left on device{where} "
                            "(free some space and run again)")
        if type(cur).__module__ == "sqlite3" and "disk is full" in str(cur):
            return DiskFull("no space left on device for the run history "
                            "(free some space and run again)")
        cur = cur.__cause__ or cur.__context__
    return None


class DiskFull(AttestError):
    """A write failed because the file system is full (or the quota is used up): exit 1."""

    exit_code = ExitCode.FAILURE
