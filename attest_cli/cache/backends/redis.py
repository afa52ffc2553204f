"""Redis backend: ``cache.endpoint`` (host:port, ``redis://`` or ``rediss://`` for TLS).

Writes are ``SET NX`` with a TTL of ``cache.retention_days`` (first writer wins; reads
refresh the TTL, so the TTL counts from last use). Values above 4 MiB are split into chunks
written first, under a random id, and a small header naming them is set last, so a reader
sees either the whole value or none of it. Every call has ``cache.timeout`` as one total
deadline (:func:`.bounded.within`) and no client-side retries: the circuit breaker decides
when to try again.

Values are untrusted: a read asks for at most ``max_entry_size`` bytes (``GETRANGE``), a
chunk header must name 1..:data:`.bounded.MAX_CHUNKS` chunks and a total size within the
limit, and each chunk is read only up to the bytes the header has left. Opened read-only
(``cache.mode: read-only``) the backend sends no mutating command at all: no TTL refresh,
no writes, no deletes.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import time
from collections.abc import Iterator
from typing import Any, TypeVar

from attest_cli.cache.backends.base import MalformedObject, StoredObject
from attest_cli.cache.backends.bounded import (
    DEFAULT_MAX_ENTRY_SIZE,
    MAX_CHUNKS,
    MAX_HEADER_BYTES,
    RemoteCalls,
    too_large,
)
from attest_cli.redaction import redact_url

CHUNK = 4 * 1024 * 1024
_CHUNK_ID = re.compile(r"[0-9a-f]{1,64}")
_INLINE = b"\x00"
_CHUNKED = b"\x01"
T = TypeVar("T")


class RedisBackend(RemoteCalls):
    name = "redis"

    def __init__(self, endpoint: str, *, prefix: str = "attest/", timeout: float = 5.0,
                 ttl: int = 0, password: str | None = None, chunk_size: int = CHUNK,
                 max_entry_size: int = DEFAULT_MAX_ENTRY_SIZE, read_only: bool = False) -> None:
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
        self._response_error = redis.exceptions.ResponseError
        self.prefix = prefix
        self.ttl = ttl
        self.chunk_size = chunk_size
        self.endpoint = redact_url(endpoint)  # it appears in errors, logs and reports
        self.timeout = timeout
        self.max_entry_size = max_entry_size
        self.read_only = read_only
        self.where = f"redis at {self.endpoint}"

    def _k(self, key: str) -> str:
        return self.prefix + key

    def _ex(self) -> int | None:
        return self.ttl or None

    def get(self, key: str) -> bytes | None:
        def read() -> bytes | None:
            try:
                return read_value()
            except self._response_error as exc:
                if "WRONGTYPE" in str(exc):  # a list, hash... planted under our prefix
                    raise MalformedObject(f"{key}: not a string value") from None
                raise

        def read_value() -> bytes | None:
            k = self._k(key)
            limit = self.max_entry_size
            # a marker byte and at most limit + 1 bytes of payload: enough to see "too big"
            if self.ttl and not self.read_only:
                # the read and the TTL refresh in one round trip (EXPIRE of an absent key
                # does nothing): a remote hit is one round trip per object, not two
                pipe = self.client.pipeline(transaction=False)
                pipe.getrange(k, 0, limit + 1)
                pipe.expire(k, self.ttl)
                got, _ = pipe.execute()
                raw = bytes(got)
            else:
                raw = bytes(self.client.getrange(k, 0, limit + 1))  # type: ignore[arg-type]
            if not raw:  # absent (every stored value has its marker byte)
                return None
            if len(raw) > limit + 1:
                raise too_large(key, len(raw) - 1, limit)
            if raw[:1] == _INLINE:
                return raw[1:]
            if raw[:1] != _CHUNKED:
                raise MalformedObject(f"{key}: unknown value format")
            ident, n, size = _header(raw[1:], key, limit)
            names = [self._chunk(ident, i) for i in range(n)]
            parts, total = [], 0
            for name in names:
                part = bytes(self.client.getrange(name, 0, size - total))  # type: ignore[arg-type]
                if not part:
                    return None  # a chunk expired or was evicted: the value is gone
                total += len(part)
                if total > size:
                    raise MalformedObject(f"{key}: its chunks are longer than the "
                                          f"{size} bytes its header claims")
                parts.append(part)
            if total != size:
                raise MalformedObject(f"{key}: its chunks are shorter than the "
                                      f"{size} bytes its header claims")
            self._touch(names)  # the header's TTL was refreshed with its read
            return b"".join(parts)
        return self._do(read)

    def _touch(self, names: list[str]) -> None:
        """Refresh the TTL of what was read (never on a read-only cache)."""
        if not self.ttl or self.read_only:
            return
        pipe = self.client.pipeline(transaction=False)
        for n in names:
            pipe.expire(n, self.ttl)
        pipe.execute()

    def _chunk(self, ident: str, i: int) -> str:
        return f"{self.prefix}chunks/{ident}/{i}"

    def put(self, key: str, data: bytes) -> bool:
        if self._refuse("writing", key):
            return False

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
        if self._refuse("deleting", key):
            return

        def remove() -> None:
            k = self._k(key)
            raw = self.client.getrange(k, 0, MAX_HEADER_BYTES)
            if raw and raw[:1] == _CHUNKED:
                with contextlib.suppress(MalformedObject):
                    ident, n, _size = _header(bytes(raw[1:]), key,  # type: ignore[arg-type]
                                              self.max_entry_size)
                    self.client.delete(*[self._chunk(ident, i) for i in range(n)])
            self.client.delete(k)
        self._do(remove)

    def size(self) -> int:
        def total() -> int:
            n = 0
            for k in self.client.scan_iter(match=self.prefix + "*", count=1000):
                n += int(self.client.strlen(k))
            return n
        return self._do(total, self._listing_deadline())

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
        return iter(self._do(listing, self._listing_deadline()))


    def close(self) -> None:
        with contextlib.suppress(*self._errors):
            self.client.close()


def _header(raw: bytes, key: str, limit: int) -> tuple[str, int, int]:
    """The chunk id, count and total size of a chunk header, each within its bound."""
    if len(raw) > MAX_HEADER_BYTES:
        raise MalformedObject(f"{key}: chunk header longer than {MAX_HEADER_BYTES} bytes")
    try:
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise MalformedObject(f"{key}: chunk header is not JSON") from None
    if not isinstance(header, dict):
        raise MalformedObject(f"{key}: chunk header is not an object")
    ident, n, size = header.get("id"), header.get("n"), header.get("size")
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_CHUNKS:
        raise MalformedObject(f"{key}: chunk header claims {str(n)[:40]} chunks "
                              f"(at most {MAX_CHUNKS})")
    if not isinstance(size, int) or isinstance(size, bool) or size < n:
        raise MalformedObject(f"{key}: chunk header claims a size of {str(size)[:40]} "
                              f"for {n} chunks")
    if size > limit:
        raise too_large(key, size, limit)
    if not isinstance(ident, str) or not _CHUNK_ID.fullmatch(ident):
        raise MalformedObject(f"{key}: chunk header has a bad chunk id")
    return ident, n, size


def _escape(pattern: str) -> str:
    """Escape glob characters of a literal prefix for SCAN MATCH."""
    out = []
    for c in pattern:
        out.append("\\" + c if c in "*?[]\\" else c)
    return "".join(out)
