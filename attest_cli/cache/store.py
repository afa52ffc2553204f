"""Entries on a backend: ``entries/<key>`` manifests and ``blobs/<xx>/<hex>`` contents.

Blobs are written before the manifest that names them, and the manifest with first-writer-
wins semantics, so a reader that finds a manifest finds its blobs (unless something evicted
or damaged them - which the digest check on every read turns into a miss, not a bad restore).
An object that breaks a bound of its backend (:class:`MalformedObject`) is a corrupt entry
here, like a blob that fails its digest.
"""

from __future__ import annotations

from collections.abc import Iterator

from attest_cli.cache.backends.base import CacheBackend, MalformedObject
from attest_cli.cache.backends.local import LocalBackend
from attest_cli.cache.manifest import CorruptEntry, Manifest, parse
from attest_cli.digest import bytes_digest

ENTRIES = "entries/"
BLOBS = "blobs/"


def entry_key(key: str) -> str:
    return ENTRIES + key


def blob_key(digest: str) -> str:
    hexd = digest.removeprefix("blake3:")
    return f"{BLOBS}{hexd[:2]}/{hexd}"


def read(backend: CacheBackend, key: str, *, touch: bool = True) -> bytes | None:
    """An object's bytes (None when absent); :class:`CorruptEntry` when it breaks a bound.
    ``touch=False`` reads a local object without marking it used (maintenance)."""
    try:
        if not touch and isinstance(backend, LocalBackend):
            return backend.peek(key)
        return backend.get(key)
    except MalformedObject as exc:
        raise CorruptEntry(str(exc)) from None


def load_manifest(backend: CacheBackend, key: str, *, touch: bool = True) -> Manifest | None:
    """The entry's manifest, None when absent; :class:`CorruptEntry` when untrustworthy."""
    raw = read(backend, entry_key(key), touch=touch)
    if raw is None:
        return None
    return parse(raw, key=key)


def fetch_blob(backend: CacheBackend, digest: str, *, repair: bool = True) -> bytes:
    """A blob's content, verified against its digest (:class:`CorruptEntry` otherwise).

    A blob that does not match is deleted (``repair``): nothing can ever make it valid.
    """
    data = read(backend, blob_key(digest))
    if data is None:
        raise CorruptEntry(f"blob {digest[:19]}... is missing")
    if bytes_digest(data) != digest:
        if repair:
            backend.delete(blob_key(digest))
        raise CorruptEntry(f"blob {digest[:19]}... does not match its digest")
    return data


def put_blob(backend: CacheBackend, digest: str, data: bytes) -> int:
    """Store a blob unless present; returns the bytes written. (A remote is asked first, to
    skip the upload; the local backend's ``put`` checks for itself.)"""
    key = blob_key(digest)
    if not isinstance(backend, LocalBackend) and backend.contains(key):
        return 0
    return len(data) if backend.put(key, data) else 0


def put_manifest(backend: CacheBackend, manifest: Manifest) -> int:
    raw = manifest.to_json()
    return len(raw) if backend.put(entry_key(manifest.key), raw) else 0


def delete_entry(backend: CacheBackend, key: str) -> None:
    backend.delete(entry_key(key))


def entry_keys(backend: CacheBackend) -> Iterator[str]:
    for obj in backend.objects(ENTRIES):
        yield obj.key[len(ENTRIES):]


def verify_entry(backend: CacheBackend, key: str, *, repair: bool = False) -> list[str]:
    """Problems of one entry (empty when sound): the manifest and every blob it names."""
    try:
        manifest = load_manifest(backend, key)
    except CorruptEntry as exc:
        return [str(exc)]
    if manifest is None:
        return ["manifest vanished"]
    problems = []
    for digest in sorted(manifest.blob_digests):
        try:
            fetch_blob(backend, digest, repair=repair)
        except CorruptEntry as exc:
            problems.append(str(exc))
    return problems
