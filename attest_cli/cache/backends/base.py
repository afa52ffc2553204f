"""The one small interface every cache backend implements, and the errors it may raise.

Keys are ``/``-separated strings (``blobs/ab/<hex>``, ``entries/<key>``); values are bytes.
A backend knows nothing about steps or manifests. Remote backends raise
:class:`BackendUnavailable` for anything that is the network's or the server's fault, so the
caller (the circuit breaker) can degrade instead of failing the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from attest_cli.record import FrozenRecord


class BackendUnavailable(Exception):
    """The backend could not be reached or answered with an error (timeouts included)."""


class MalformedObject(Exception):
    """A stored object breaks a bound or its format (:mod:`.bounded`): a corrupt entry."""


class StoredObject(FrozenRecord):
    key: str
    size: int
    last_used: float  # seconds since the epoch (last read or write, as well as known)

    def __init__(self, key: str, size: int, last_used: float) -> None:
        self.__dict__.update(key=key, size=size, last_used=last_used)


class CacheBackend(Protocol):
    """get/put/contains/delete/size/ping, plus listing for maintenance commands."""

    name: str  # local | redis | s3

    def get(self, key: str) -> bytes | None:
        """The value, or None when absent; :class:`MalformedObject` when it breaks a bound."""
        ...

    def put(self, key: str, data: bytes) -> bool:
        """Store unless present (first writer wins); True when this call wrote it."""
        ...

    def contains(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def size(self) -> int:
        """Bytes used by this cache (under its prefix)."""
        ...

    def ping(self) -> None:
        """Raise :class:`BackendUnavailable` unless the backend answers."""
        ...

    def objects(self, prefix: str = "") -> Iterator[StoredObject]:
        """Every stored object whose key starts with ``prefix``."""
        ...

    def close(self) -> None: ...
