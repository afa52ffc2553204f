"""The one place attest handles SIGINT and SIGTERM (run, benchmark, verify, serve).

A long command must stop cleanly on Ctrl-C or ``kill``: finish writing what it holds (the
run report, buffered verifications, a partial benchmark) and exit 128+N. Python's default
raises KeyboardInterrupt wherever the main thread happens to be (inside an observer,
mid-SQLite) and SIGTERM kills at once, so while a command works its signals are *routed*:
to a callback (:func:`routed`) or noted for the command to act on at a safe point
(:class:`StopRequest`). Handlers are installed from the main thread only (Python allows
no other) and the previous handlers are restored on the way out, however it ends.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

from attest_cli.errors import Interrupted

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def routed(handler: Callable[[int], None]) -> Iterator[bool]:
    """Within the block SIGINT/SIGTERM call ``handler(signum)``; yields False (and routes
    nothing) off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    previous: dict[int, Any] = {}
    try:
        for sig in STOP_SIGNALS:
            previous[int(sig)] = signal.signal(sig, lambda signum, _frame: handler(signum))
        yield True
    finally:
        for num, old in previous.items():
            signal.signal(num, old)


class StopRequest:
    """Notes the first SIGINT/SIGTERM; the command calls :meth:`check` at safe points (it
    raises :class:`Interrupted`) or waits on :attr:`stopped`.

    ``second_is_hard``: a second signal raises KeyboardInterrupt at once (the user means
    it), except inside :meth:`closing`, where buffered results are being written.
    ``check_on_exit``: leaving the block normally after a signal raises Interrupted too.
    """

    def __init__(self, *, second_is_hard: bool = False, check_on_exit: bool = False) -> None:
        self.signum: int | None = None
        self.stopped = threading.Event()
        self.second_is_hard = second_is_hard
        self.check_on_exit = check_on_exit
        self._closing = False
        self._route: contextlib.AbstractContextManager[bool] | None = None

    def __enter__(self) -> StopRequest:
        self._route = routed(self._note)
        self._route.__enter__()
        return self

    def _note(self, signum: int) -> None:
        if self.signum is not None and self.second_is_hard and not self._closing:
            raise KeyboardInterrupt
        self.signum = self.signum or signum
        self.stopped.set()

    def check(self) -> None:
        if self.signum is not None:
            raise Interrupted(self.signum)

    @contextlib.contextmanager
    def closing(self) -> Iterator[None]:
        self._closing = True
        try:
            yield
        finally:
            self._closing = False

    def __exit__(self, exc_type: object, *exc: object) -> None:
        assert self._route is not None
        self._route.__exit__(None, None, None)
        if exc_type is None and self.check_on_exit:
            self.check()
