"""Total deadlines for network calls, which a signal can always cut short.

A socket timeout bounds each *read*, not the call: a peer that sends one byte every few
seconds (a "slow loris") keeps ``urlopen(timeout=5)`` going for as long as it likes, and a
main thread blocked in such a read runs Python signal handlers but never returns to act on
them. So every network call attest makes (Pushgateway push, trace export, health probes)
goes through :func:`call`: the call runs on a daemon thread, and the caller waits for it
in short slices until it returns, its total deadline passes (:class:`DeadlineExceeded`) or
a signal arrives (:class:`Cancelled`). An abandoned call's thread is a daemon: it cannot
hold the process at exit, and its own socket timeout (the time left) ends it soon after.

Signals are *counted*, not latched: a call gives up only on a signal received after it
started. An interrupted run still pushes its metrics and flushes its trace (each within
its deadline); a second Ctrl-C during that push ends it at once.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

# How often a waiting caller looks at the clock and at the signal count (seconds): the
# latency between a signal and the call giving up.
POLL_SECONDS = 0.05
# The most of a response body :func:`http_request` keeps (bytes); collectors and gateways
# answer with a few bytes, so more is a misbehaving peer, not data worth waiting for.
MAX_RESPONSE_BYTES = 1 << 20

_signals = 0  # how many SIGINT/SIGTERM the run has routed here (see note_signal)


class DeadlineExceeded(TimeoutError):
    """The call did not finish within its total deadline."""


class Cancelled(Exception):
    """A signal (SIGINT/SIGTERM) arrived while the call was in flight."""


def note_signal() -> None:
    """Record that SIGINT/SIGTERM arrived; every call in flight gives up.

    Safe to call from a signal handler: it only rebinds an int (no lock is taken).
    """
    global _signals
    _signals += 1


def signals_seen() -> int:
    return _signals


def call(func: Callable[[], T], *, seconds: float, what: str) -> T:
    """``func()``'s result, or its exception; at most ``seconds`` of wall time, whatever the
    peer does, and less if a signal arrives meanwhile.

    Raises :class:`DeadlineExceeded` or :class:`Cancelled` (naming ``what``) when it gives up.
    """
    start_count = _signals
    done = threading.Event()
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = func()
        except BaseException as exc:  # handed to the caller as is
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name=f"attest-net-{what}", daemon=True).start()
    end = time.monotonic() + max(0.0, seconds)
    while not done.wait(max(0.0, min(POLL_SECONDS, end - time.monotonic()))):
        if _signals != start_count:
            raise Cancelled(f"{what}: given up on a signal")
        if time.monotonic() >= end:
            raise DeadlineExceeded(f"{what}: no complete answer within {seconds:g}s")
    if "error" in box:
        raise box["error"]
    return box["value"]


async def in_daemon_thread(func: Callable[[], T]) -> T:
    """Await blocking ``func()`` on a daemon thread of its own.

    For asyncio callers that bound the wait with ``asyncio.wait_for``: unlike
    ``run_in_executor``, a call that never returns neither holds a pool worker nor blocks
    interpreter exit (executor threads are joined at exit).
    """
    import asyncio  # only health probes need it; a run never loads asyncio for this module

    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(value: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    def work() -> None:
        value: Any = None
        error: BaseException | None = None
        try:
            value = func()
        except BaseException as exc:
            error = exc
        # a closed loop (RuntimeError): nobody waits for this answer any more
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, value, error)

    threading.Thread(target=work, name="attest-blocking", daemon=True).start()
    return await future


def http_request(url: str, *, data: bytes | None = None, method: str = "GET",
                 headers: Mapping[str, str] | None = None, seconds: float,
                 what: str = "HTTP request") -> tuple[int, bytes]:
    """One HTTP request with a total deadline: ``(status, body)``; an HTTP error status is
    ``urllib.error.HTTPError``, like ``urlopen``. The body is capped at
    :data:`MAX_RESPONSE_BYTES`."""
    import urllib.request

    end = time.monotonic() + seconds

    def fetch() -> tuple[int, bytes]:
        request = urllib.request.Request(url, data=data, method=method,
                                         headers=dict(headers or {}))
        # the socket timeout is the time left plus a little: the total deadline always
        # fires first (one clear message), and an abandoned thread ends soon after it
        left = max(0.01, end - time.monotonic()) + 0.5
        with urllib.request.urlopen(request, timeout=left) as response:
            return response.status, response.read(MAX_RESPONSE_BYTES)

    return call(fetch, seconds=seconds, what=what)
