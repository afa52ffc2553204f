"""The local cache's entries (manifests) in one SQLite file, ``.entries.db``, not a file each.

A manifest is a few hundred bytes to 64 KiB (small outputs are inline, see docs/cache.md),
and a file each cost more than the manifest: a new inode, a temp name, a rename and a lock
on one directory shared by every worker, per stored step. On this project's 2-core machine
that was ~0.3 ms of kernel time per step, a fifth of a 1,000-step cold build, and a cache
of 100,000 entries was 100,000 files for a CI cache action to pack and unpack. A row of
one WAL-mode table costs a page append, and the whole table is one file.

Durability: ``synchronous=NORMAL`` with WAL never corrupts the file; a crash of the machine
(not of attest) may lose the entries of the last moments, which is a miss, never a wrong
restore (a run syncs the file system when it ends, see ``local.sync_filesystem``).

The file may come from a restored CI cache, so it is untrusted like the rest of the
directory: it is opened with ``trusted_schema=OFF``, used only if its schema is exactly
ours (no trigger, view or other table can run anything), every value is bounded by
``max_entry_size`` before it is read, and one that SQLite cannot read is moved aside
(``.entries.db.broken``) and started again. A process has one connection, used by one
thread at a time; SQLite serialises the writers of all processes sharing the file.

SQLite's WAL needs memory shared by every process that opens the file, so every process
must be on one host: a cache directory on a network file system (NFS, SMB, sshfs, ...),
which runners on several hosts may share, keeps an entry per file as before (a temp file
and a rename are safe there).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

from attest_cli.cache.backends.base import MalformedObject, StoredObject
from attest_cli.cache.backends.bounded import check_size

log = logging.getLogger("attest.cache")

TABLE_FILE = ".entries.db"  # a dot-name: not a cache object of the directory's own
BROKEN_SUFFIX = ".broken"
_SCHEMA = ("CREATE TABLE objects (key TEXT PRIMARY KEY, data BLOB NOT NULL, "
           "used REAL NOT NULL)")
# what sqlite_master of our file holds, exactly: anything else is not our file
_MASTER = {("table", "objects", _SCHEMA), ("index", "sqlite_autoindex_objects_1", None)}
BUSY_SECONDS = 5.0  # another process writing: wait this long, then the write fails (a miss)
# file systems that several hosts may mount at once (Linux's names, /proc/self/mountinfo)
NETWORK_FS = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "9p", "afs", "ceph",
                        "glusterfs", "lustre", "gpfs", "ocfs2", "gfs2", "beegfs", "fuse.sshfs",
                        "fuse.s3fs", "fuse.gcsfuse", "fuse.glusterfs", "fuse.cephfs"})
MOUNTINFO = "/proc/self/mountinfo"


class EntryTable:
    """Cache objects by key in ``<root>/.entries.db``; read-only use never creates it.

    One connection per process, its statements one at a time under a lock (each is tens of
    microseconds): a connection per thread cost two descriptors and a schema check per
    thread, and up to 4 x ``-j`` threads run with a remote tier."""

    def __init__(self, root: str, *, max_entry_size: int, touch_interval: float) -> None:
        self.path = f"{root}/{TABLE_FILE}"
        self.max_entry_size = max_entry_size
        self.touch_interval = touch_interval
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self.broken = False  # not usable in this process: reads miss, writes go to files

    # -- the connection --------------------------------------------------------------------
    def _rows(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]] | None:
        """A query's rows; None where there is no usable table (a miss)."""
        found = self._run(sql, args, create=False, rows=True)
        return found if isinstance(found, list) else None

    def _change(self, sql: str, args: tuple[object, ...], *, create: bool = False
                ) -> int | None:
        """A statement's count of changed rows; None where there is no usable table."""
        changed = self._run(sql, args, create=create, rows=False)
        return changed if isinstance(changed, int) else None

    def _run(self, sql: str, args: tuple[object, ...], *, create: bool, rows: bool
             ) -> list[tuple[Any, ...]] | int | None:
        """One statement under the lock. OperationalError (busy past BUSY_SECONDS, a full
        disk) is raised: the caller's error, not the file's."""
        if self._conn is None and not create and not os.path.exists(self.path):
            return None  # nothing stored here yet: no file for a read
        with self._lock:
            conn = self._connect()
            if conn is None:
                return None
            try:
                cur = conn.execute(sql, args)
                return cur.fetchall() if rows else cur.rowcount
            except sqlite3.OperationalError:
                raise
            except sqlite3.DatabaseError as exc:  # malformed: the file, not this statement
                self.broken = True  # files for the rest of this process; the next starts anew
                self._close()
                self._move_aside(exc)
                return None

    def _connect(self) -> sqlite3.Connection | None:
        """The open connection, opened on first use (under the lock)."""
        if self._conn is not None or self.broken:
            return self._conn
        fs = file_system_of(os.path.dirname(self.path))
        if fs in NETWORK_FS:
            self.broken = True
            log.debug("cache: %s is on %s, a network file system: entries stay files",
                      self.path, fs)
            return None
        try:
            self._conn = self._open()
        except sqlite3.OperationalError as exc:  # cannot open (permissions): files
            self.broken = True
            log.warning("cache: cannot open %s (%s); entries go to files", self.path, exc)
        except sqlite3.DatabaseError as exc:  # not a database, or not ours: a new one
            self._move_aside(exc)
            try:
                self._conn = self._open()
            except sqlite3.DatabaseError:
                self.broken = True
        return self._conn

    def _open(self) -> sqlite3.Connection:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        if not os.path.exists(self.path):  # as every cache object: 0666 less the umask
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666))
        conn = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute("PRAGMA trusted_schema=OFF")
            master = {tuple(row) for row in conn.execute(
                "SELECT type, name, sql FROM sqlite_master")}
            if not master:
                conn.execute("PRAGMA auto_vacuum=INCREMENTAL")  # a prune gives space back
                conn.execute("PRAGMA journal_mode=WAL")
                with contextlib.suppress(sqlite3.OperationalError):  # created meanwhile
                    conn.execute(_SCHEMA)
                master = {tuple(row) for row in conn.execute(
                    "SELECT type, name, sql FROM sqlite_master")}
            if master != _MASTER:
                raise sqlite3.DatabaseError("not attest's entry table (unexpected schema)")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            conn.close()
            raise
        return conn

    def _move_aside(self, exc: sqlite3.DatabaseError) -> None:
        """The file cannot be used: move it aside, so that a new one is started."""
        log.warning("cache: %s cannot be read (%s); it is moved aside to %s%s and the "
                    "entries in it are misses", self.path, exc, self.path, BROKEN_SUFFIX)
        with contextlib.suppress(OSError):
            os.replace(self.path, self.path + BROKEN_SUFFIX)
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(OSError):
                os.unlink(self.path + suffix)

    # -- the backend's operations ----------------------------------------------------------
    def get(self, key: str, *, touch: bool) -> bytes | None:
        try:
            found = self._rows("SELECT length(data), used, CASE WHEN length(data) <= ? THEN "
                               "data END FROM objects WHERE key = ?", (self.max_entry_size, key))
        except sqlite3.OperationalError as exc:
            log.debug("cache: reading %s from %s failed: %s", key, self.path, exc)
            return None
        if not found:
            return None
        size, used, data = found[0]
        if not isinstance(size, int) or not isinstance(data, bytes | None):
            raise MalformedObject(f"{key}: not a stored object")
        check_size(key, size, self.max_entry_size)
        if not isinstance(data, bytes):
            raise MalformedObject(f"{key}: not a stored object")
        if touch and isinstance(used, float | int) and time.time() - used > self.touch_interval:
            with contextlib.suppress(sqlite3.Error):
                self._change("UPDATE objects SET used = ? WHERE key = ?", (time.time(), key))
        return data

    def put(self, key: str, data: bytes) -> bool | None:
        """True if stored, False if already there, None where there is no table (use a
        file)."""
        changed = self._change("INSERT OR IGNORE INTO objects (key, data, used) VALUES "
                               "(?, ?, ?)", (key, data, time.time()), create=True)
        return None if changed is None else changed == 1

    def contains(self, key: str) -> bool:
        try:
            return bool(self._rows("SELECT 1 FROM objects WHERE key = ?", (key,)))
        except sqlite3.OperationalError:
            return False

    def names(self, prefix: str, limit: int) -> set[str] | None:
        """The keys under ``prefix`` without it; None past ``limit``."""
        try:
            found = self._rows("SELECT substr(key, ?) FROM objects WHERE key >= ? AND key < ? "
                               "LIMIT ?", (len(prefix) + 1, prefix, _after(prefix), limit + 1))
        except sqlite3.OperationalError:
            return None  # asked name by name instead
        out = {str(name) for (name,) in found or ()}
        return None if len(out) > limit else out

    def delete(self, key: str) -> None:
        self._change("DELETE FROM objects WHERE key = ?", (key,))

    def objects(self, prefix: str = "") -> Iterator[StoredObject]:
        found = self._rows("SELECT key, length(data), used FROM objects WHERE key >= ? AND "
                           "key < ?", (prefix, _after(prefix)))
        for key, size, used in found or ():
            if isinstance(key, str) and isinstance(size, int) and isinstance(used, float | int):
                yield StoredObject(key=key, size=size, last_used=float(used))

    def give_back_space(self) -> None:
        """After deletions (a prune): return the freed pages to the file system (the
        pragma frees them as its rows are stepped through, which fetching them does)."""
        with contextlib.suppress(sqlite3.Error):
            self._rows("PRAGMA incremental_vacuum")

    def close(self) -> None:
        """Close the connection: the last one of any process folds the WAL into the file."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None


def file_system_of(path: str, mountinfo: str = MOUNTINFO) -> str | None:
    """The type of the file system ``path`` is on (the longest mount point holding it), or
    None where that cannot be told (no /proc: the table is used)."""
    target = os.path.realpath(path)
    while not os.path.exists(target) and target != os.path.dirname(target):
        target = os.path.dirname(target)  # the cache directory may not exist yet
    best, kind = -1, None
    try:
        with open(mountinfo, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                fields = line.split()
                if " - " not in line or len(fields) < 5:
                    continue
                mount = fields[4].replace("\\040", " ")
                fs_type = line.split(" - ", 1)[1].split()[0]
                inside = target == mount or target.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) > best:
                    best, kind = len(mount), fs_type
    except OSError:
        return None
    return kind


def _after(prefix: str) -> str:
    """The first string after every key that starts with ``prefix``: a range of the key's
    index instead of a scan of every row (``entries/`` is everything up to ``entries0``)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else "\U0010ffff"
