"""Which step the running code works for, so that what it logs is tied to that step's span.

A worker thread runs one step at a time, but the scheduler's event loop serves every running
step on one thread: a thread-local "current step" would be whichever step started last. The
scheduler marks the step around each piece of work it does for it (:func:`working_for`), and
JSON log lines take the span of :func:`current_step` (docs/tracing.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_CURRENT: ContextVar[str | None] = ContextVar("attest_current_step", default=None)


def current_step() -> str | None:
    """The step the code running here works for; None for the run's own work."""
    return _CURRENT.get()


@contextmanager
def working_for(step: str) -> Iterator[None]:
    token = _CURRENT.set(step)
    try:
        yield
    finally:
        _CURRENT.reset(token)
