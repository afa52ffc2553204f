"""The Content Addressable Storage: FindMissingBlobs, batches, and ByteStream for big blobs.

Writes upload only what the server is missing. A blob fits a batch when its size (plus a
little for the request's framing) is under the server's batch limit
(:mod:`.capabilities`); bigger ones go through ByteStream ``Write`` in
:data:`CHUNK_BYTES` chunks. Reads are the mirror image.

Everything read is untrusted: a digest whose size is above the caller's limit is refused
before any byte is asked for, a ByteStream answer is refused as soon as it passes the
announced size, and every blob is hashed and compared with its digest before it is
returned (:class:`~.errors.UnsafeResult` otherwise).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from attest_cli.reapi import digests
from attest_cli.reapi.capabilities import Capabilities
from attest_cli.reapi.channel import Remote
from attest_cli.reapi.errors import ReapiUnavailable, UnsafeResult
from attest_cli.reapi.protos import bs_grpc, bs_pb2, code_pb2, re_grpc, re_pb2

CHUNK_BYTES = 1024 * 1024  # one ByteStream message (bytes)
MAX_DIGESTS_PER_CALL = 10_000  # digests in one FindMissingBlobs / BatchReadBlobs request
_FRAMING = 1024  # bytes of request framing counted per blob in a batch
Blob = bytes | Callable[[], bytes]  # content, or how to read it when it must be sent


def check_digest(digest: Any, fn: digests.DigestFunction, limit: int, what: str) -> None:
    """Refuse a digest that is malformed or announces more than ``limit`` bytes."""
    if not fn.valid_hash(digest.hash):
        raise UnsafeResult(f"{what}: {digest.hash[:80]!r} is not a {fn.name} digest")
    if digest.size_bytes < 0 or digest.size_bytes > limit:
        raise UnsafeResult(f"{what} claims {digest.size_bytes} bytes, above the {limit}-byte "
                           "limit")


class Cas:
    """The CAS of one instance, with the server's digest function and batch limit."""

    def __init__(self, remote: Remote, caps: Capabilities) -> None:
        self.remote = remote
        self.caps = caps
        self.fn = caps.digest_function
        self._cas = re_grpc.ContentAddressableStorageStub(remote.channel)
        self._bs = bs_grpc.ByteStreamStub(remote.channel)

    # -- names ---------------------------------------------------------------------------
    def _blob_name(self, digest: Any) -> str:
        fn = "" if self.fn.name == "sha256" else f"{self.fn.name}/"
        return f"blobs/{fn}{digest.hash}/{digest.size_bytes}"

    def read_name(self, digest: Any) -> str:
        prefix = f"{self.remote.instance}/" if self.remote.instance else ""
        return prefix + self._blob_name(digest)

    def write_name(self, digest: Any) -> str:
        prefix = f"{self.remote.instance}/" if self.remote.instance else ""
        return f"{prefix}uploads/{uuid.uuid4()}/{self._blob_name(digest)}"

    def _fits_batch(self, size: int) -> bool:
        return size + _FRAMING <= self.caps.max_batch_bytes

    # -- queries -------------------------------------------------------------------------
    def find_missing(self, wanted: Iterable[Any]) -> list[Any]:
        """The digests among ``wanted`` that the server does not have."""
        unique = list({digests.key(d): d for d in wanted}.values())
        missing: list[Any] = []
        for start in range(0, len(unique), MAX_DIGESTS_PER_CALL):
            part = unique[start:start + MAX_DIGESTS_PER_CALL]
            request = re_pb2.FindMissingBlobsRequest(
                instance_name=self.remote.instance, blob_digests=part,
                digest_function=self.fn.value)
            answer = self.remote.unary(self._cas.FindMissingBlobs, request, "FindMissingBlobs")
            missing += list(answer.missing_blob_digests)
        return missing

    # -- writes --------------------------------------------------------------------------
    def upload(self, blobs: Iterable[tuple[Any, Blob]]) -> int:
        """Store every ``(digest, data)`` the server lacks; the number of bytes sent.

        ``data`` may be a function returning the bytes: it is called only for a blob the
        server is missing (an input root's files are read only when they must be sent)."""
        by_key = {digests.key(d): (d, data) for d, data in blobs}
        if not by_key:
            return 0
        missing = self.find_missing(d for d, _ in by_key.values())
        todo = [by_key[digests.key(d)] for d in missing if digests.key(d) in by_key]
        sent = 0
        batch: list[tuple[Any, bytes]] = []
        batch_bytes = 0
        for digest, blob in todo:
            data = blob() if callable(blob) else blob
            if not self._fits_batch(len(data)):
                self._write_stream(digest, data)
                sent += len(data)
                continue
            if batch_bytes + len(data) + _FRAMING > self.caps.max_batch_bytes:
                self._write_batch(batch)
                batch, batch_bytes = [], 0
            batch.append((digest, data))
            batch_bytes += len(data) + _FRAMING
            sent += len(data)
        if batch:
            self._write_batch(batch)
        return sent

    def _write_batch(self, batch: list[tuple[Any, bytes]]) -> None:
        request = re_pb2.BatchUpdateBlobsRequest(
            instance_name=self.remote.instance, digest_function=self.fn.value,
            requests=[re_pb2.BatchUpdateBlobsRequest.Request(digest=d, data=data)
                      for d, data in batch])
        answer = self.remote.unary(self._cas.BatchUpdateBlobs, request, "BatchUpdateBlobs")
        for item in answer.responses:
            if item.status.code != code_pb2.OK:
                raise ReapiUnavailable(self.remote.redact(
                    f"REAPI BatchUpdateBlobs at {self.remote.endpoint.shown}: blob "
                    f"{digests.key(item.digest)[:80]} refused: {item.status.message[:200]}"))

    def _write_stream(self, digest: Any, data: bytes) -> None:
        name = self.write_name(digest)

        def requests() -> Iterator[Any]:
            offset = 0
            while True:
                chunk = data[offset:offset + CHUNK_BYTES]
                last = offset + len(chunk) >= len(data)
                yield bs_pb2.WriteRequest(resource_name=name if offset == 0 else "",
                                          write_offset=offset, finish_write=last, data=chunk)
                offset += len(chunk)
                if last:
                    return

        answer = self.remote.client_stream(self._bs.Write, requests(), "ByteStream.Write")
        if answer.committed_size not in (len(data), -1):
            raise ReapiUnavailable(f"REAPI ByteStream.Write at {self.remote.endpoint.shown}: "
                                   f"committed {answer.committed_size} of {len(data)} bytes")

    # -- reads ---------------------------------------------------------------------------
    def _verified(self, digest: Any, data: bytes, what: str) -> bytes:
        if len(data) != digest.size_bytes or self.fn.hexdigest(data) != digest.hash:
            raise UnsafeResult(f"{what}: content does not match its digest "
                               f"{digests.key(digest)[:80]}")
        return data

    def read(self, digest: Any, *, limit: int, what: str = "blob") -> bytes:
        """One blob, checked against ``limit`` first and against its digest after."""
        return self.read_many([digest], limit=limit, what=what)[digests.key(digest)]

    def read_many(self, wanted: Iterable[Any], *, limit: int, total_limit: int | None = None,
                  what: str = "blob") -> dict[str, bytes]:
        """Blobs by :func:`.digests.key`; each at most ``limit`` bytes, all together at most
        ``total_limit`` (checked on the announced sizes before anything is read)."""
        unique = list({digests.key(d): d for d in wanted}.values())
        total = 0
        for d in unique:
            check_digest(d, self.fn, limit, what)
            total += d.size_bytes
        if total_limit is not None and total > total_limit:
            raise UnsafeResult(f"{what}s claim {total} bytes together, above the "
                               f"{total_limit}-byte limit")
        out: dict[str, bytes] = {}
        small: list[Any] = []
        for d in unique:
            if d.size_bytes == 0:
                out[digests.key(d)] = self._verified(d, b"", what)
            elif self._fits_batch(d.size_bytes):
                small.append(d)
            else:
                out[digests.key(d)] = self._read_stream(d, what)
        batch: list[Any] = []
        batch_bytes = 0
        for d in small:
            if batch and (batch_bytes + d.size_bytes + _FRAMING > self.caps.max_batch_bytes
                          or len(batch) >= MAX_DIGESTS_PER_CALL):
                out.update(self._read_batch(batch, what))
                batch, batch_bytes = [], 0
            batch.append(d)
            batch_bytes += d.size_bytes + _FRAMING
        if batch:
            out.update(self._read_batch(batch, what))
        return out

    def _read_batch(self, batch: list[Any], what: str) -> dict[str, bytes]:
        request = re_pb2.BatchReadBlobsRequest(instance_name=self.remote.instance,
                                               digests=batch, digest_function=self.fn.value)
        answer = self.remote.unary(self._cas.BatchReadBlobs, request, "BatchReadBlobs")
        asked = {digests.key(d): d for d in batch}
        out: dict[str, bytes] = {}
        for item in answer.responses:
            k = digests.key(item.digest)
            if k not in asked:
                continue  # not asked for: ignored, never trusted
            if item.status.code == code_pb2.NOT_FOUND:
                raise UnsafeResult(f"{what} {k[:80]} is missing from the CAS")
            if item.status.code != code_pb2.OK:
                raise ReapiUnavailable(self.remote.redact(
                    f"REAPI BatchReadBlobs at {self.remote.endpoint.shown}: {k[:80]}: "
                    f"{item.status.message[:200]}"))
            out[k] = self._verified(asked[k], item.data, what)
        for k in asked:
            if k not in out:
                raise UnsafeResult(f"{what} {k[:80]} is missing from the CAS answer")
        return out

    def _read_stream(self, digest: Any, what: str) -> bytes:
        request = bs_pb2.ReadRequest(resource_name=self.read_name(digest), read_offset=0,
                                     read_limit=0)
        parts: list[bytes] = []
        got = 0
        max_messages = digest.size_bytes + 16  # each chunk but a final empty one has a byte
        for answer in self.remote.stream(self._bs.Read, request, "ByteStream.Read",
                                         max_messages=max_messages):
            got += len(answer.data)
            if got > digest.size_bytes:
                raise UnsafeResult(f"{what} {digests.key(digest)[:80]} is longer than its "
                                   "digest says")
            parts.append(answer.data)
        return self._verified(digest, b"".join(parts), what)
