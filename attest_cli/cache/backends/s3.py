"""S3 backend: ``cache.bucket``, ``cache.prefix``, ``cache.region``, ``cache.endpoint_url``.

Credentials come from the standard AWS chain (environment, shared files, instance roles).
Every call has ``cache.timeout`` as one total deadline (:func:`.bounded.within`; also the
connect and read timeout) and a single attempt: the circuit breaker, not botocore's retry
loop, decides when to try again. An object is untrusted: one whose announced length is
above ``cache.max_entry_size`` is refused unread, and a body is read only up to that limit.
Opened read-only (``cache.mode: read-only``) the backend sends no PUT, POST or DELETE.
Writes ask S3 not to overwrite (``If-None-Match: *``); where a store ignores that,
content-addressed blobs make a second write harmless and the manifest
of a key is the same whoever writes it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, TypeVar

from attest_cli.cache.backends.base import StoredObject
from attest_cli.cache.backends.bounded import (
    DEFAULT_MAX_ENTRY_SIZE,
    RemoteCalls,
    check_size,
    read_limited,
)

T = TypeVar("T")


# Connections kept for reuse. With a remote tier, a run has up to 4 x -j steps talking to
# the bucket at once (engine/scheduler.py, LANES_PER_SLOT); botocore keeps 10, and every
# request beyond them opened a fresh connection (a TCP and TLS handshake) and dropped it.
# 256 covers -j 64; connections are only opened as they are needed.
MAX_POOL_CONNECTIONS = 256


class S3Backend(RemoteCalls):
    name = "s3"

    def __init__(self, bucket: str, *, prefix: str = "attest/", region: str | None = None,
                 endpoint_url: str | None = None, timeout: float = 5.0,
                 max_entry_size: int = DEFAULT_MAX_ENTRY_SIZE, read_only: bool = False) -> None:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        config = Config(connect_timeout=timeout or 60, read_timeout=timeout or 60,
                        retries={"max_attempts": 1, "mode": "standard"}, region_name=region,
                        max_pool_connections=MAX_POOL_CONNECTIONS)
        self.client = boto3.session.Session().client("s3", endpoint_url=endpoint_url,
                                                     config=config)
        self._client_error = ClientError
        self._errors: tuple[type[BaseException], ...] = (BotoCoreError, ClientError, OSError)
        self.bucket = bucket
        self.prefix = prefix
        self.timeout = timeout
        self.max_entry_size = max_entry_size
        self.read_only = read_only
        self.where = f"s3 bucket {bucket}"

    def _status(self, exc: Any) -> str:
        err = getattr(exc, "response", {}).get("Error", {})
        return str(err.get("Code", ""))

    def get(self, key: str) -> bytes | None:
        def read() -> bytes | None:
            try:
                obj = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
            except self._client_error as exc:
                if self._status(exc) in ("NoSuchKey", "404"):
                    return None
                raise
            body = obj["Body"]
            try:
                length = obj.get("ContentLength")
                if isinstance(length, int):
                    check_size(key, length, self.max_entry_size)
                return read_limited(body, key, self.max_entry_size)
            finally:
                body.close()
        return self._do(read)

    def put(self, key: str, data: bytes) -> bool:
        if self._refuse("writing", key):
            return False

        def write() -> bool:
            try:
                self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data,
                                       IfNoneMatch="*")
            except self._client_error as exc:
                if self._status(exc) in ("PreconditionFailed", "412",
                                         "ConditionalRequestConflict"):
                    return False
                raise
            return True
        return self._do(write)

    def contains(self, key: str) -> bool:
        def head() -> bool:
            try:
                self.client.head_object(Bucket=self.bucket, Key=self.prefix + key)
            except self._client_error as exc:
                if self._status(exc) in ("404", "NoSuchKey", "NotFound"):
                    return False
                raise
            return True
        return self._do(head)

    def delete(self, key: str) -> None:
        if self._refuse("deleting", key):
            return
        self._do(lambda: self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key))

    def size(self) -> int:
        return sum(o.size for o in self.objects())

    def ping(self) -> None:
        self._do(lambda: self.client.head_bucket(Bucket=self.bucket))

    def objects(self, prefix: str = "") -> Iterator[StoredObject]:
        def listing() -> list[StoredObject]:
            out = []
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix)
            for page in pages:
                for item in page.get("Contents", []):
                    out.append(StoredObject(key=item["Key"][len(self.prefix):],
                                            size=int(item["Size"]),
                                            last_used=item["LastModified"].timestamp()))
            return out
        return iter(self._do(listing, self._listing_deadline()))

    def close(self) -> None:
        with contextlib.suppress(AttributeError, *self._errors):
            self.client.close()
