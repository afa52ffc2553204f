"""S3 backend: ``cache.bucket``, ``cache.prefix``, ``cache.region``, ``cache.endpoint_url``.

Credentials come from the standard AWS chain (environment, shared files, instance roles).
Every call has ``cache.timeout`` as connect and read timeout and a single attempt: the
circuit breaker, not botocore's retry loop, decides when to try again. Writes ask S3 not to
overwrite (``If-None-Match: *``); where a store ignores that, content-addressed blobs make a
second write harmless and the manifest of a key is the same whoever writes it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from attest_cli.cache.backends.base import BackendUnavailable, StoredObject

T = TypeVar("T")


class S3Backend:
    name = "s3"

    def __init__(self, bucket: str, *, prefix: str = "attest/", region: str | None = None,
                 endpoint_url: str | None = None, timeout: float = 5.0) -> None:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        config = Config(connect_timeout=timeout or 60, read_timeout=timeout or 60,
                        retries={"max_attempts": 1, "mode": "standard"}, region_name=region)
        self.client = boto3.session.Session().client("s3", endpoint_url=endpoint_url,
                                                     config=config)
        self._client_error = ClientError
        self._errors: tuple[type[BaseException], ...] = (BotoCoreError, ClientError, OSError)
        self.bucket = bucket
        self.prefix = prefix

    def _do(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except self._errors as exc:
            raise BackendUnavailable(f"s3 bucket {self.bucket}: {exc}") from None

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
            return bytes(obj["Body"].read())
        return self._do(read)

    def put(self, key: str, data: bytes) -> bool:
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
        return iter(self._do(listing))

    def close(self) -> None:
        with contextlib.suppress(AttributeError, *self._errors):
            self.client.close()
