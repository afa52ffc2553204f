"""Redis backend: ``cache.endpoint`` (host:port, ``redis://`` or ``rediss://`` for TLS).

Writes are ``SET NX`` with a TTL of ``cache.retention_days`` (first writer wins; reads
refresh the TTL, so the TTL counts from last use). Values above 4 MiB are split into chunks
written first, under a random id, and a small header naming them is set last, so a reader
sees either the whole value or none of it. Every call has the ``cache.timeout`` socket
timeout and no client-side retries: the circuit breaker decides when to try again.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from attest_cli.cache.backends.base import BackendUnavailable, StoredObject
from attest_cli.redaction import redact_url

CHUNK = 4 * 1024 * 1024
_INLINE = b"\x00"
_CHUNKED = b"\x01"
T = TypeVar("T")


class RedisBackend:
    name = "redis"

    def __init__(self, endpoint: str, *, prefix: str = "attest/", timeout: float = 5.0,
                 ttl: int = 0, password: str | None = None, chunk_size: int = CHUNK) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        url = endpoint if "://" in endpoint else f"redis://{endpoint}"
        kwargs: dict[str, Any] = {"socket_timeout": timeout or None,
                                  "socket_connect_timeout": timeout or None,
                                  "retry": Retry(NoBackoff(), 0)}
        if password:
            kwargs["password"] = password
        try:
            self.client = redis.Redis.from_url(url, **kwargs)
        except ValueError as exc:
            from attest_cli.errors import ConfigError

            raise ConfigError(f"cache.endpoint: {exc}") from None
        self._errors: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError)
        self.prefix = prefix
        self.ttl = ttl
        self.chunk_size = chunk_size
        self.endpoint = redact_url(endpoint)  # it appears in errors, logs and reports

    def _do(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except self._errors as exc:
            raise BackendUnavailable(f"redis at {self.endpoint}: {exc}") from None

    def _k(self, key: str) -> str:
        return self.prefix + key

    def _ex(self) -> int | None:
        return self.ttl or None

    def get(self, key: str) -> bytes | None:
        def read() -> bytes | None:
            k = self._k(key)
            raw = self.client.getex(k, ex=self.ttl) if self.ttl else self.client.get(k)
            if raw is None:
                return None
            if raw[:1] == _INLINE:
                return bytes(raw[1:])  # type: ignore[arg-type]
            header = json.loads(raw[1:])
            names = [self._chunk(header["id"], i) for i in range(header["n"])]
            parts = self.client.mget(names)
            if any(p is None for p in parts):
                return None
            if self.ttl:
                pipe = self.client.pipeline(transaction=False)
                for n in names:
                    pipe.expire(n, self.ttl)
                pipe.execute()
            return b"".join(parts)  # type: ignore[arg-type]
        return self._do(read)

    def _chunk(self, ident: str, i: int) -> str:
        return f"{self.prefix}chunks/{ident}/{i}"

    def put(self, key: str, data: bytes) -> bool:
        def write() -> bool:
            k = self._k(key)
            if len(data) <= self.chunk_size:
                return bool(self.client.set(k, _INLINE + data, nx=True, ex=self._ex()))
            if self.client.exists(k):
                return False
            ident = secrets.token_hex(8)
            names = []
            pipe = self.client.pipeline(transaction=False)
            for i, start in enumerate(range(0, len(data), self.chunk_size)):
                names.append(self._chunk(ident, i))
                pipe.set(names[-1], data[start:start + self.chunk_size], ex=self._ex())
            pipe.execute()
            header = _CHUNKED + json.dumps({"id": ident, "n": len(names),
                                            "size": len(data)}).encode()
            if self.client.set(k, header, nx=True, ex=self._ex()):
                return True
            self.client.delete(*names)  # somebody else won: drop our chunks
            return False
        return self._do(write)

    def contains(self, key: str) -> bool:
        return self._do(lambda: bool(self.client.exists(self._k(key))))

    def delete(self, key: str) -> None:
        def remove() -> None:
            k = self._k(key)
            raw = self.client.get(k)
            if raw is not None and raw[:1] == _CHUNKED:
                try:
                    header = json.loads(raw[1:])
                    names = [self._chunk(header["id"], i) for i in range(header["n"])]
                    if names:
                        self.client.delete(*names)
                except (ValueError, KeyError, TypeError):
                    pass
            self.client.delete(k)
        self._do(remove)

    def size(self) -> int:
        def total() -> int:
            n = 0
            for k in self.client.scan_iter(match=self.prefix + "*", count=1000):
                n += int(self.client.strlen(k))
            return n
        return self._do(total)

    def ping(self) -> None:
        self._do(self.client.ping)

    def objects(self, prefix: str = "") -> Iterator[StoredObject]:
        def listing() -> list[StoredObject]:
            now = time.time()
            out = []
            start = self.prefix + prefix
            for raw_key in self.client.scan_iter(match=_escape(start) + "*", count=1000):
                name = raw_key.decode("utf-8", "replace")
                key = name[len(self.prefix):]
                if key.startswith("chunks/"):
                    continue
                pipe = self.client.pipeline(transaction=False)
                pipe.strlen(raw_key)
                pipe.object("idletime", raw_key)
                size, idle = pipe.execute(raise_on_error=False)
                if not isinstance(size, int):
                    continue
                idle = idle if isinstance(idle, int) else 0
                out.append(StoredObject(key=key, size=size, last_used=now - idle))
            return out
        return iter(self._do(listing))

    def close(self) -> None:
        with contextlib.suppress(*self._errors):
            self.client.close()


def _escape(pattern: str) -> str:
    """Escape glob characters of a literal prefix for SCAN MATCH."""
    out = []
    for c in pattern:
        out.append("\\" + c if c in "*?[]\\" else c)
    return "".join(out)
