"""The embedded default backend: a directory (``.attest/cache/`` or ``cache.dir``).

Manifests (``entries/<key>``) are rows of one SQLite file (:mod:`.entry_table`); every
other object, and a manifest the table cannot take, is a file named by its key, written to
a temp file and renamed into place, so a reader never sees half an object and two runs
writing the same key leave one valid copy. Objects are not fsync'd one by one: a run syncs
the file system once when it ends (:func:`sync_filesystem`, see docs/cache.md
"Durability"). Reads mark an object used (a file's mtime, a row's ``used``) at most once
an hour (:data:`TOUCH_INTERVAL_SECONDS`): the "last used" time that least-recently-used
eviction (``cache.max_size``) and ``cache.retention_days`` go by.

The directory may have been filled by a restored CI cache, so reads are bounded like the
remote ones: a file (or the inflated content of a ``.zst`` file) above ``max_entry_size``
is a :class:`~.base.MalformedObject`, found without reading it whole.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from attest_cli.atomic import write_object
from attest_cli.cache.backends.base import MalformedObject, StoredObject
from attest_cli.cache.backends.bounded import DEFAULT_MAX_ENTRY_SIZE, check_size, read_limited
from attest_cli.cache.backends.entry_table import EntryTable

log = logging.getLogger("attest.cache")

_ZSTD_SUFFIX = ".zst"
_COMPRESSIBLE = "blobs/"  # only blobs are ever compressed: other keys have no .zst to probe
_TABLED = "entries/"  # manifests: rows of one SQLite file (entry_table.py), not a file each
# A read marks an object used (its mtime) only when the mark is older than this: eviction
# by size and by cache.retention_days needs no finer "last used", and a no-op run then
# reads its entries without writing an inode per step.
TOUCH_INTERVAL_SECONDS = 3600.0


class LocalBackend:
    name = "local"

    def __init__(self, root: Path, *, compression: str = "none",
                 max_entry_size: int = DEFAULT_MAX_ENTRY_SIZE) -> None:
        self.root = root
        self.compression = compression
        self.max_entry_size = max_entry_size
        # No directory yet: everything it will hold, this process writes (``written``
        # bytes; maintenance.enforce_limits then needs no walk of it).
        self.created_here = not os.path.isdir(root)
        self.written = 0
        self._lock = threading.Lock()
        self._root = str(root)  # str paths: several per stored or looked-up step
        self.table = EntryTable(self._root, max_entry_size=max_entry_size,
                                touch_interval=TOUCH_INTERVAL_SECONDS,
                                unwritten=self._unwritten)
        self._entry_files: bool | None = None  # see _may_have_entry_files

    def _path(self, key: str) -> str:
        if key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"bad cache key {key!r}")
        return f"{self._root}/{key}"

    def get(self, key: str) -> bytes | None:
        return self._read(key, touch=True)

    def peek(self, key: str) -> bytes | None:
        """Read without touching the last-used time (maintenance is not use)."""
        return self._read(key, touch=False)

    def _may_have_entry_files(self) -> bool:
        """Whether manifests may be files here: earlier versions wrote them, and this process
        does when the table cannot take one. Asked once (a ``stat`` of ``entries/``), so a
        cache without any costs no failed ``open`` per lookup nor ``stat`` per store; an
        entry another process writes as a file meanwhile is then a miss here, never wrong."""
        if self._entry_files is None:
            self._entry_files = os.path.isdir(f"{self._root}/{_TABLED}")
        return self._entry_files

    def _read(self, key: str, *, touch: bool) -> bytes | None:
        path = self._path(key)
        if key.startswith(_TABLED):
            data = self.table.get(key, touch=touch)
            if data is not None or not self._may_have_entry_files():
                return data
        candidates = ((path, False), (path + _ZSTD_SUFFIX, True)) \
            if key.startswith(_COMPRESSIBLE) else ((path, False),)
        for candidate, compressed in candidates:
            try:
                # unbuffered: no isatty ioctl or seek for an object read whole (per lookup)
                with open(candidate, "rb", buffering=0) as fh:
                    st = os.fstat(fh.fileno())
                    if not compressed:
                        check_size(key, st.st_size, self.max_entry_size)
                    data = _decompressed(fh, key, self.max_entry_size) if compressed else \
                        read_limited(fh, key, self.max_entry_size)
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                continue
            if touch and time.time() - st.st_mtime > TOUCH_INTERVAL_SECONDS:
                with contextlib.suppress(OSError):
                    os.utime(candidate)
            return data
        return None

    def put(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        if key.startswith(_TABLED) and not self.table.broken:
            if self._may_have_entry_files() and os.path.exists(path):  # an earlier version's
                return False
            # None: no table here (a file instead); a batch the table cannot write later
            # comes back as files through _unwritten
            stored = self.table.put(key, data)
            if stored is not None:
                if stored:
                    with self._lock:
                        self.written += len(data)
                return stored
        if self.contains(key):
            return False
        written = self._write_file(key, data)
        with self._lock:
            self.written += written
        return True

    def _write_file(self, key: str, data: bytes) -> int:
        """``key`` as a file; the bytes written."""
        path = self._path(key)
        if key.startswith(_TABLED):
            self._entry_files = True  # read back from here on
        # No fsync per object: blobs are digest-checked and manifests parsed strictly on
        # every read, so a torn object is a miss, never a wrong restore; the run syncs the
        # file system once at its end (:func:`sync_filesystem`).
        if self.compression == "zstd" and key.startswith(_COMPRESSIBLE):
            data = _compress(data)
            write_object(path + _ZSTD_SUFFIX, data)
        else:
            write_object(path, data)
        return len(data)

    def _unwritten(self, rows: dict[str, bytes]) -> None:
        """Entries already reported stored that the table could not write (its lock held
        past its wait, a full disk): files, which every read also looks at."""
        for key, data in rows.items():
            try:
                self._write_file(key, data)
            except OSError as exc:
                log.warning("cache: entry %s not stored: %s", key, exc)

    def flush(self) -> None:
        """Write the entry rows waiting in memory (see ``entry_table.py``) now."""
        self.table.flush()

    def contains(self, key: str) -> bool:
        path = self._path(key)  # os.path: asked once per up-to-date step
        if key.startswith(_TABLED):
            return self.table.contains(key) or (self._may_have_entry_files() and
                                                os.path.exists(path))
        return os.path.exists(path) or (key.startswith(_COMPRESSIBLE) and
                                        os.path.exists(path + _ZSTD_SUFFIX))

    def names(self, folder: str, limit: int) -> set[str] | None:
        """The object names directly in ``folder`` (e.g. ``entries``), as of now; one
        directory read instead of a ``stat`` per name asked (see ContentCache.fresh).
        None past ``limit`` names: a cache shared by many pipelines is asked name by name
        rather than read whole."""
        out: set[str] = set()
        if f"{folder}/" == _TABLED:
            tabled = self.table.names(_TABLED, limit)
            if tabled is None:
                return None
            out |= tabled
        try:
            with os.scandir(self._path(folder)) as it:
                for entry in it:
                    if not entry.name.startswith("."):
                        out.add(entry.name.removesuffix(_ZSTD_SUFFIX))
                        if len(out) > limit:
                            return None
        except (FileNotFoundError, NotADirectoryError):
            pass  # no entry written as a file (the usual case: they are rows)
        return out

    def delete(self, key: str) -> None:
        path = self._path(key)
        if key.startswith(_TABLED):
            self.table.delete(key)
        for candidate in (path, path + _ZSTD_SUFFIX):
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                os.unlink(candidate)

    def size(self) -> int:
        return sum(o.size for o in self.objects())

    def ping(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def objects(self, prefix: str = "") -> Iterator[StoredObject]:
        if _TABLED.startswith(prefix) or prefix.startswith(_TABLED):
            yield from self.table.objects(prefix if prefix.startswith(_TABLED) else _TABLED)
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
        self.table.close()


def sync_filesystem(path: Path) -> None:
    """Flush the file system holding ``path`` to disk: one ``syncfs(2)`` for everything a
    run stored, instead of an fsync per object. Elsewhere than Linux, ``sync(2)``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        if not _syncfs(fd):
            os.sync()
    finally:
        os.close(fd)


def _syncfs(fd: int) -> bool:
    import ctypes

    try:  # the symbols of the running process, libc's among them (no library search)
        return int(ctypes.CDLL(None, use_errno=True).syncfs(fd)) == 0
    except (OSError, AttributeError):
        return False


def _compress(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor(level=3).compress(data)


def _decompressed(fh: BinaryIO, key: str, limit: int) -> bytes:
    """Inflate a stream without trusting the size its frame header announces."""
    import zstandard

    try:
        with zstandard.ZstdDecompressor().stream_reader(fh, closefd=False) as reader:
            return read_limited(reader, key, limit)
    except zstandard.ZstdError as exc:
        raise MalformedObject(f"{key}: not a valid zstd frame ({exc})") from None
