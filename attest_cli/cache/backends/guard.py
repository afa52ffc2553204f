"""A circuit breaker around a remote backend: after repeated failures, stop calling it.

Each failure is a :class:`BackendUnavailable` (the backends turn timeouts, refused
connections and server errors into it). The first failure logs one warning; after
``threshold`` failures in a row the breaker opens and every call fails at once, without
touching the network, for ``cooldown`` seconds (said once), then one call is let through
to probe. A success closes it again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from attest_cli.cache.backends.base import BackendUnavailable, CacheBackend, StoredObject

log = logging.getLogger("attest.cache")
T = TypeVar("T")


class GuardedBackend:
    def __init__(self, inner: CacheBackend, *, threshold: int = 3, cooldown: float = 30.0) -> None:
        self.inner = inner
        self.name = inner.name
        self.threshold = threshold
        self.cooldown = cooldown
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until = 0.0
        self._warned = False
        self._said_open = False
        self.failed_calls = 0

    @property
    def is_open(self) -> bool:
        return time.monotonic() < self._open_until

    def _call(self, fn: Callable[[], T]) -> T:
        if self.is_open:
            raise BackendUnavailable(f"{self.name} cache is paused after repeated failures")
        try:
            result = fn()
        except BackendUnavailable as exc:
            self._failed(exc)
            raise
        with self._lock:
            self._failures = 0
        return result

    def _failed(self, exc: Exception) -> None:
        with self._lock:
            self._failures += 1
            self.failed_calls += 1
            first = not self._warned
            self._warned = True
            opened = self._failures >= self.threshold
            if opened:
                self._open_until = time.monotonic() + self.cooldown
                self._failures = 0
            say_open = opened and not self._said_open
            self._said_open = self._said_open or opened
        if first:
            log.warning("%s cache unavailable, continuing without it: %s", self.name, exc)
        if say_open:
            log.warning("%s cache failed %d times in a row; not calling it for %gs",
                        self.name, self.threshold, self.cooldown)

    def call(self, fn: Callable[[], T]) -> T:
        """Any call of the backend's own (a REAPI step lookup), behind the same breaker."""
        return self._call(fn)

    def get(self, key: str) -> bytes | None:
        return self._call(lambda: self.inner.get(key))

    def put(self, key: str, data: bytes) -> bool:
        return self._call(lambda: self.inner.put(key, data))

    def contains(self, key: str) -> bool:
        return self._call(lambda: self.inner.contains(key))

    def delete(self, key: str) -> None:
        self._call(lambda: self.inner.delete(key))

    def size(self) -> int:
        return self._call(self.inner.size)

    def ping(self) -> None:
        self._call(self.inner.ping)

    def objects(self, prefix: str = "") -> Iterator[StoredObject]:
        return iter(self._call(lambda: list(self.inner.objects(prefix))))

    def close(self) -> None:
        self.inner.close()
