"""The embedded default backend: a directory (``.attest/cache/`` or ``cache.dir``).

Every object is a file named by its key, written to a temp file and renamed into place, so a
reader never sees half an object and two runs writing the same key leave one valid copy.
Reads touch the file's mtime, which makes mtime the "last used" time that least-recently-
used eviction (``cache.max_size``) and ``cache.retention_days`` go by.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from attest_cli.atomic import write_atomic
from attest_cli.cache.backends.base import StoredObject

_ZSTD_SUFFIX = ".zst"


class LocalBackend:
    name = "local"

    def __init__(self, root: Path, *, compression: str = "none") -> None:
        self.root = root
        self.compression = compression

    def _path(self, key: str) -> Path:
        if key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"bad cache key {key!r}")
        return self.root / key

    def get(self, key: str) -> bytes | None:
        path = self._path(key)
        for candidate, compressed in ((path, False), (path.with_name(path.name + _ZSTD_SUFFIX),
                                                      True)):
            try:
                data = candidate.read_bytes()
            except (FileNotFoundError, NotADirectoryError):
                continue
            with contextlib.suppress(OSError):
                os.utime(candidate)
            return _decompress(data) if compressed else data
        return None

    def put(self, key: str, data: bytes) -> bool:
        if self.contains(key):
            return False
        path = self._path(key)
        blob = key.startswith("blobs/")  # digest-checked on every read: no fsync needed
        if self.compression == "zstd" and blob:
            write_atomic(path.with_name(path.name + _ZSTD_SUFFIX), _compress(data), sync=False)
        else:
            write_atomic(path, data, sync=not blob)
        return True

    def contains(self, key: str) -> bool:
        path = self._path(key)
        return path.exists() or path.with_name(path.name + _ZSTD_SUFFIX).exists()

    def delete(self, key: str) -> None:
        path = self._path(key)
        for candidate in (path, path.with_name(path.name + _ZSTD_SUFFIX)):
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                candidate.unlink()

    def size(self) -> int:
        return sum(o.size for o in self.objects())

    def ping(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def objects(self, prefix: str = "") -> Iterator[StoredObject]:
        top = prefix.split("/")[0] if prefix else ""
        start = self.root / top if top else self.root
        if not start.is_dir():
            return
        for dirpath, _dirs, files in os.walk(start):
            for name in files:
                if name.startswith("."):  # temp files of writes in progress
                    continue
                full = Path(dirpath) / name
                key = full.relative_to(self.root).as_posix().removesuffix(_ZSTD_SUFFIX)
                if not key.startswith(prefix):
                    continue
                try:
                    st = full.stat()
                except FileNotFoundError:
                    continue
                yield StoredObject(key=key, size=st.st_size, last_used=st.st_mtime)

    def stale_temp_files(self, older_than: float = 3600.0) -> Iterator[Path]:
        """Temp files left behind by a crashed writer."""
        if not self.root.is_dir():
            return
        cutoff = time.time() - older_than
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                full = Path(dirpath) / name
                with contextlib.suppress(FileNotFoundError):
                    if name.startswith(".") and name.endswith(".tmp") and \
                            full.stat().st_mtime < cutoff:
                        yield full

    def close(self) -> None:
        pass


def _compress(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor(level=3).compress(data)


def _decompress(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdDecompressor().decompress(data)
