"""The digest function a REAPI server addresses its CAS and Action Cache with.

REAPI digests are ``(hash hex, size_bytes)`` pairs. SHA-256 is what every server speaks and
the default; BLAKE3 (``DigestFunction.BLAKE3``, REAPI v2.3) is used when the server lists it
in its capabilities, as it is several times faster and is what attest's local keys use.
Every request that takes a ``digest_function`` field gets this one, and ByteStream resource
names carry its name for anything but SHA-256 (as the v2.3 spec asks).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from attest_cli.reapi.protos import re_pb2

_HEX_LENGTH = 64  # both SHA-256 and BLAKE3 (256-bit output) digests


@dataclass(frozen=True)
class DigestFunction:
    """One hash function: its REAPI enum value and how to compute it."""

    name: str  # "sha256" | "blake3" (lower-case, as in ByteStream resource names)
    value: int  # re_pb2.DigestFunction.Value

    def hexdigest(self, data: bytes) -> str:
        if self.name == "blake3":
            from blake3 import blake3

            return blake3(data).hexdigest()
        return hashlib.sha256(data).hexdigest()

    def digest(self, data: bytes) -> Any:
        """The ``Digest`` proto of ``data``."""
        return re_pb2.Digest(hash=self.hexdigest(data), size_bytes=len(data))

    def message_digest(self, message: Any) -> tuple[Any, bytes]:
        """A proto's digest and its serialised bytes (deterministic, as the spec requires)."""
        data = message.SerializeToString(deterministic=True)
        return self.digest(data), data

    def valid_hash(self, text: str) -> bool:
        return len(text) == _HEX_LENGTH and all(c in "0123456789abcdef" for c in text)


SHA256 = DigestFunction("sha256", re_pb2.DigestFunction.SHA256)
BLAKE3 = DigestFunction("blake3", re_pb2.DigestFunction.BLAKE3)


def choose(listed: Iterable[int]) -> DigestFunction:
    """BLAKE3 when the server lists it, else SHA-256 (also when it lists nothing: servers
    older than v2.3 only speak SHA-256 and say nothing)."""
    return BLAKE3 if re_pb2.DigestFunction.BLAKE3 in set(listed) else SHA256


def key(digest: Any) -> str:
    """``hash/size``: a digest as a dictionary key or in messages."""
    return f"{digest.hash}/{digest.size_bytes}"
