"""Reading untrusted objects from a cache backend: fixed bounds, and one deadline per call.

A shared cache is written by other machines, so every size, count and length a backend
reads is checked against a limit *before* anything is allocated for it: an object larger
than ``cache.max_entry_size`` (:data:`DEFAULT_MAX_ENTRY_SIZE`) is never read whole, a
Redis chunk header may name at most :data:`MAX_CHUNKS` chunks, and so on. Breaking a bound
raises :class:`~.base.MalformedObject`, which the cache treats as a corrupt entry (a miss).

:func:`within` gives a remote call one total deadline (``cache.timeout``): the call runs in
a daemon thread and the caller stops waiting when the deadline passes, however slowly the
server trickles bytes. The wait is interruptible, so Ctrl-C is never held up by a socket:
the run's signal handler calls :func:`interrupt_calls`, and every call in flight (and every
later one) gives up within :data:`_POLL` seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import BinaryIO, TypeVar

from attest_cli.cache.backends.base import BackendUnavailable, MalformedObject

log = logging.getLogger("attest.cache")
T = TypeVar("T")

DEFAULT_MAX_ENTRY_SIZE = 2 * 1000**3  # bytes; the default of cache.max_entry_size ("2GB")
MAX_CHUNKS = 4096  # chunks a Redis chunk header may name
MAX_HEADER_BYTES = 1024  # length of a Redis chunk header
LISTING_DEADLINE = 60.0  # seconds (at least) for one listing of a remote (maintenance)
_READ = 1024 * 1024
_POLL = 0.1  # seconds between looks at the interrupt flag while a call is in flight
_interrupted = threading.Event()


def interrupt_calls() -> None:
    """Make remote cache calls give up now (the run was interrupted). Signal-handler safe:
    nothing ever waits on this event, so setting it cannot contend for its lock."""
    _interrupted.set()


def interrupted() -> bool:
    """Whether :func:`interrupt_calls` was called (for clients that cancel calls themselves,
    such as gRPC's, rather than waiting in :func:`within`)."""
    return _interrupted.is_set()


def too_large(what: str, size: int, limit: int) -> MalformedObject:
    return MalformedObject(f"{what} is {size} bytes, above the {limit}-byte limit "
                           "(cache.max_entry_size)")


def check_size(what: str, size: int, limit: int) -> None:
    """Refuse an announced size above the limit before reading any of it."""
    if size > limit:
        raise too_large(what, size, limit)


def read_limited(stream: BinaryIO, what: str, limit: int) -> bytes:
    """Read a stream to its end, refusing it once it exceeds ``limit`` bytes."""
    parts: list[bytes] = []
    total = 0
    while True:
        part = stream.read(min(_READ, limit + 1 - total))
        if not part:
            return b"".join(parts)
        total += len(part)
        if total > limit:
            raise MalformedObject(f"{what} is larger than the {limit}-byte limit "
                                  "(cache.max_entry_size)")
        parts.append(part)


def within(seconds: float, fn: Callable[[], T], what: str) -> T:
    """``fn()``, or :class:`BackendUnavailable` once ``seconds`` have passed (0: no deadline).

    The call runs in a daemon thread: a server that never finishes its answer keeps that
    thread, not the run (nor the interpreter's exit), waiting."""
    if _interrupted.is_set():
        raise BackendUnavailable(f"{what}: not called, the run was interrupted")
    box: dict[str, object] = {}
    done = threading.Event()

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name="attest-cache-call", daemon=True).start()
    deadline = time.monotonic() + seconds if seconds > 0 else None
    while not done.wait(_POLL if deadline is None else
                        max(0.0, min(_POLL, deadline - time.monotonic()))):
        if _interrupted.is_set():
            raise BackendUnavailable(f"{what}: given up, the run was interrupted")
        if deadline is not None and time.monotonic() >= deadline:
            raise BackendUnavailable(f"{what}: no complete answer within the {seconds:g}s "
                                     "deadline (cache.timeout)")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


class RemoteCalls:
    """What the remote backends share: each call under one deadline (:func:`within`), the
    client's errors as :class:`BackendUnavailable`, and refusing writes when read-only."""

    name: str
    where: str  # "redis at host:port", "s3 bucket NAME": the subject of error messages
    timeout: float
    read_only: bool
    _errors: tuple[type[BaseException], ...]

    def _do(self, fn: Callable[[], T], deadline: float | None = None) -> T:
        def call() -> T:
            try:
                return fn()
            except self._errors as exc:
                raise BackendUnavailable(f"{self.where}: {exc}") from None
        return within(self.timeout if deadline is None else deadline, call, self.where)

    def _listing_deadline(self) -> float:
        """A listing is many calls: :data:`LISTING_DEADLINE` or 10 x ``cache.timeout``."""
        return max(LISTING_DEADLINE, 10 * self.timeout) if self.timeout else 0

    def _refuse(self, what: str, key: str) -> bool:
        """True (and nothing sent) when asked to write or delete on a read-only backend."""
        if self.read_only:
            log.debug("not %s %s: the %s cache is read-only", what, key, self.name)
        return self.read_only
