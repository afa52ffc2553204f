"""The local cache's entries (manifests) in one SQLite file, ``.entries-v1.db``, not a file each.

A manifest is a few hundred bytes to 64 KiB (small outputs are inline, see docs/cache.md),
and a file each cost more than the manifest: a new inode, a temp name, a rename and a lock
on one directory shared by every worker, per stored step. On this project's 2-core machine
that was ~0.5 s of kernel time in a 1,000-step cold build, and a cache of 100,000 entries
was 100,000 files for a CI cache action to pack and unpack. A row of one WAL-mode table
costs a page append, and the whole table is one file.

Durability: ``synchronous=NORMAL`` with WAL never corrupts the file; a crash of the machine
(not of attest) may lose the entries of the last moments, which is a miss, never a wrong
restore (a run syncs the file system when it ends, see ``local.sync_filesystem``).

Rows are written in batches: a stored row waits in memory (reads of this process see it
there) and the rows stored within :data:`BATCH_SECONDS` of the first go in one
transaction, written by the first store after that, by a writer thread if none comes, or
at once by :meth:`EntryTable.flush` (before the run's sync) and :meth:`EntryTable.close`.
A transaction per row was ~25 µs of the event loop's CPU per stored step, a tenth of a
cold step's store (issue 14); in a batch a row costs ~6 µs, and the write lock is held for
the batch's ``executemany`` alone (~0.1 ms), so other processes' writes hardly wait. A
kill -9 of attest loses the rows of its last :data:`BATCH_SECONDS` (misses, as above);
other processes see rows once written. A batch that cannot be written (the lock held past
:data:`BUSY_SECONDS`, a full disk) goes to ``unwritten`` - the local backend stores those
entries as files - so a row reported stored is never silently dropped.

The file may come from a restored CI cache, so it is untrusted like the rest of the
directory. It is opened with ``trusted_schema=OFF`` and used only if its schema is exactly
ours (no trigger, view or other table can run anything); SQLite's length limit is set to
the entry bound, so no value above it is ever loaded (reading one is an error, the entry a
corrupt one); its page cache is bounded; a log (``-wal``) above :data:`MAX_WAL_BYTES` is not
replayed; a symlink or other non-regular file at any of its paths is removed. A file SQLite
reports as corrupt or not a database is moved aside (``.broken``), with its log, but only
while no other process has it open (every process holds a shared ``flock`` on
``.entries-v1.lock``; moving takes the exclusive one, or the process just uses files).

A process has one connection, used by one thread at a time. SQLite serialises the writers
of all processes; a writer waits at most :data:`BUSY_SECONDS` for another, then the entry
is stored as a file instead (every read looks there too). A dry run opens the file
``immutable``: no lock, no log, no write.

SQLite's WAL needs memory shared by every process that opens the file, so every process
must be on one host: a cache directory on a network file system (NFS, SMB, sshfs, ...),
which runners on several hosts may share, keeps an entry per file as before (a temp file
and a rename are safe there). The schema's version is in the file's name: another version
of attest with another schema uses another file.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import sqlite3
import stat
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from attest_cli.cache.backends.base import MalformedObject, StoredObject
from attest_cli.cache.backends.bounded import check_size

log = logging.getLogger("attest.cache")

TABLE_FILE = ".entries-v1.db"  # a dot-name: not a cache object of the directory's own
LOCK_FILE = ".entries-v1.lock"
BROKEN_SUFFIX = ".broken"
_SIDECARS = ("-wal", "-shm")
_SCHEMA = ("CREATE TABLE objects (key TEXT PRIMARY KEY, data BLOB NOT NULL, "
           "used REAL NOT NULL)")
# what sqlite_master of our file holds, exactly: anything else is not our file
_MASTER = {("table", "objects", _SCHEMA), ("index", "sqlite_autoindex_objects_1", None)}
# Another process writing: wait this long, then store the entry as a file (reads look
# there too). The wait holds this process's other threads, so it is short.
BUSY_SECONDS = 2.0
BATCH_SECONDS = 0.02  # how long a stored row may wait in memory (see the docstring)
BATCH_BYTES = 16 * 2**20  # ... or until the rows waiting are this large
LINGER_SECONDS = 2.0  # the writer thread, without rows to write, then ends
MAX_WAL_BYTES = 256 * 2**20  # a log this large was not left by a run (4 MiB checkpoints)
PAGE_CACHE_KIB = 2048  # per connection, whatever the file's header asks for
SQLITE_MAX_LENGTH = 1_000_000_000  # SQLite's own ceiling on a value
_ROW_OVERHEAD = 64  # a row's bytes besides its key and value (header, the time), at most
# Keys the table may hold: ``entries/`` and a name without dots or slashes (a cache key
# is 64 hex digits). A planted row with any other key is never handed to the backend.
_KEY = re.compile(r"entries/[A-Za-z0-9_-]{1,128}")
_BROKEN_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
# file systems that several hosts may mount at once (Linux's names, /proc/self/mountinfo)
NETWORK_FS = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "9p", "afs", "ceph",
                        "glusterfs", "lustre", "gpfs", "ocfs2", "gfs2", "beegfs", "fuse.sshfs",
                        "fuse.s3fs", "fuse.gcsfuse", "fuse.glusterfs", "fuse.cephfs"})
MOUNTINFO = "/proc/self/mountinfo"


class TableUnavailable(OSError):
    """The table cannot answer now (another process's write outlasted BUSY_SECONDS, a full
    disk): the caller stores a file, or counts a miss."""


class _NotOurs(sqlite3.DatabaseError):
    """A database whose schema is not exactly ours."""


class EntryTable:
    """Cache objects by key in ``<root>/.entries-v1.db``; reads never create it.

    One connection per process, its statements one at a time under a lock (each is tens of
    microseconds): a connection per thread cost descriptors and a schema check per thread,
    and up to 4 x ``-j`` threads run with a remote tier."""

    def __init__(self, root: str, *, max_entry_size: int, touch_interval: float,
                 unwritten: Callable[[dict[str, bytes]], None] | None = None) -> None:
        self.root = root
        self.path = f"{root}/{TABLE_FILE}"
        self.max_entry_size = max_entry_size
        self.touch_interval = touch_interval
        self.read_only = False  # a dry run: immutable, no lock, never written or moved
        self._conn: sqlite3.Connection | None = None
        self._flock_fd: int | None = None
        self.broken = False  # not usable in this process: reads miss, writes go to files
        # the longest value SQLite takes here; a longer one is stored as a file
        self._max_length = min(max_entry_size + 4096, SQLITE_MAX_LENGTH)
        self._unwritten = unwritten  # rows a batch could not write: stored elsewhere
        self._reset()
        _TABLES.add(self)

    def _reset(self) -> None:
        """The lock and the batch, new (and in a forked child: see :func:`_after_fork`)."""
        self._lock = threading.Lock()
        self._batch: dict[str, tuple[bytes, float]] = {}  # key: (data, when stored)
        self._batch_bytes = 0
        self._due = 0.0
        self._batch_waiting = threading.Condition(self._lock)
        self._writer: threading.Thread | None = None

    # -- the connection --------------------------------------------------------------------
    def _rows(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]] | None:
        """A query's rows; None where there is no usable table (a miss)."""
        found = self._run(sql, args, create=False, rows=True)
        return found if isinstance(found, list) else None

    def _change(self, sql: str, args: tuple[object, ...], *, create: bool = False
                ) -> int | None:
        """A statement's count of changed rows; None where there is no usable table."""
        if self.read_only:
            return None
        changed = self._run(sql, args, create=create, rows=False)
        return changed if isinstance(changed, int) else None

    def _run(self, sql: str, args: tuple[object, ...], *, create: bool, rows: bool
             ) -> list[tuple[Any, ...]] | int | None:
        """One statement under the lock. A busy or full database is
        :class:`TableUnavailable`; a value over the length limit is SQLite's DataError
        (the caller's entry is corrupt); a corrupt file is moved aside (a miss)."""
        if self._conn is None and not create and not os.path.exists(self.path):
            return None  # nothing stored here yet: no file for a read
        with self._lock:
            conn = self._connect(create)
            if conn is None:
                return None
            try:
                cur = conn.execute(sql, args)
                return cur.fetchall() if rows else cur.rowcount
            except sqlite3.DataError:
                raise
            except sqlite3.DatabaseError as exc:
                if exc.sqlite_errorcode not in _BROKEN_CODES:
                    raise TableUnavailable(f"{self.path}: {exc}") from None
                self.broken = True  # files for the rest of this process
                self._close_connection()
                self._move_aside(exc)
                return None

    def _connect(self, create: bool) -> sqlite3.Connection | None:
        """The open connection, opened on first use (under the lock). A read that finds no
        table (an empty file) gets None and leaves the file as it is."""
        if self._conn is not None or self.broken:
            return self._conn
        if not self._may_open():
            return None
        try:
            conn = self._open(create)
        except sqlite3.DatabaseError as exc:  # _NotOurs among them
            code = getattr(exc, "sqlite_errorcode", None)
            if self.read_only or not (isinstance(exc, _NotOurs) or code in _BROKEN_CODES):
                self.broken = True  # cannot open it now (permissions, busy): use files
                log.warning("cache: cannot use %s (%s); entries go to files", self.path, exc)
                return None
            if not self._move_aside(exc):
                return None
            try:
                conn = self._open(create)
            except sqlite3.DatabaseError:
                self.broken = True
                return None
        if conn is not None:
            self._conn = conn
        return conn

    def _may_open(self) -> bool:
        """Whether the table may be opened here: not on a network file system, the shared
        lock taken, and no planted link or oversized log at its paths (found: moved aside
        with the file, if no other process has it open)."""
        fs = file_system_of(self.root)
        if fs in NETWORK_FS:
            self.broken = True
            log.debug("cache: %s is on %s, a network file system: entries stay files",
                      self.path, fs)
            return False
        if not self.read_only and self._flock_fd is None:
            try:
                os.makedirs(self.root, exist_ok=True)
                fd = os.open(f"{self.root}/{LOCK_FILE}", os.O_RDWR | os.O_CREAT |
                             os.O_CLOEXEC | os.O_NOFOLLOW, 0o666)
            except OSError as exc:
                self.broken = True
                log.warning("cache: cannot use %s (%s); entries go to files", self.path, exc)
                return False
            if not _shared_lock(fd):  # held exclusively far longer than a move aside takes
                os.close(fd)
                self.broken = True
                log.warning("cache: %s is locked by another process; entries go to files",
                            self.path)
                return False
            self._flock_fd = fd
        for path in (self.path, *(self.path + s for s in _SIDECARS)):
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            except OSError:
                self.broken = True
                return False
            if not stat.S_ISREG(st.st_mode):
                problem = f"{path} is not a regular file"
            elif path.endswith("-wal") and st.st_size > MAX_WAL_BYTES:
                problem = f"{path} is a log too large to replay ({st.st_size} bytes)"
            else:
                continue
            if self.read_only:
                self.broken = True
                return False
            return self._move_aside(problem)
        return True

    def _open(self, create: bool) -> sqlite3.Connection | None:
        if self.read_only:
            uri = Path(self.path).absolute().as_uri() + "?immutable=1"
            conn = sqlite3.connect(uri, uri=True, timeout=BUSY_SECONDS,
                                   isolation_level=None, check_same_thread=False)
        else:
            if not create and not os.path.exists(self.path):
                return None  # a read never creates the file (sqlite3.connect would)
            if create:  # as every cache object: 0666 less the umask, never through a link
                with contextlib.suppress(FileExistsError):
                    os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                                     os.O_NOFOLLOW | os.O_CLOEXEC, 0o666))
            conn = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None,
                                   check_same_thread=False)
        try:
            conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH,
                          min(self.max_entry_size + 4096, SQLITE_MAX_LENGTH))
            conn.execute("PRAGMA trusted_schema=OFF")
            conn.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")
            master = _master(conn)
            if not master:
                if not create or self.read_only:
                    conn.close()  # an empty file: no table for a read, and none made
                    return None
                conn.execute("PRAGMA auto_vacuum=INCREMENTAL")  # a prune gives space back
                conn.execute("PRAGMA journal_mode=WAL")
                with contextlib.suppress(sqlite3.OperationalError):  # created meanwhile
                    conn.execute(_SCHEMA)
                master = _master(conn)
            if master != _MASTER:
                raise _NotOurs("not attest's entry table (unexpected schema)")
            if not self.read_only:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            conn.close()
            raise
        return conn

    def _move_aside(self, exc: Exception | str) -> bool:
        """Move the unusable file (and its log) aside, if no other process has it open;
        else use files in this process. True if a new file may be started."""
        fd = self._flock_fd
        try:
            if fd is None or self.read_only:
                raise BlockingIOError
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.broken = True
            log.warning("cache: %s cannot be read (%s); another process has it open, so "
                        "this one stores its entries as files", self.path, exc)
            return False
        try:
            log.warning("cache: %s cannot be read (%s); it is moved aside to %s%s and the "
                        "entries in it are misses", self.path, exc, self.path, BROKEN_SUFFIX)
            try:
                os.replace(self.path, self.path + BROKEN_SUFFIX)
            except FileNotFoundError:
                pass
            except OSError:
                self.broken = True
                return False
            for suffix in _SIDECARS:  # the log belongs to the file moved, never to a new one
                with contextlib.suppress(FileNotFoundError):
                    os.replace(self.path + suffix, self.path + BROKEN_SUFFIX + suffix)
            return True
        finally:
            fcntl.flock(fd, fcntl.LOCK_SH)  # a downgrade: never waits

    # -- the backend's operations ----------------------------------------------------------
    def get(self, key: str, *, touch: bool) -> bytes | None:
        with self._lock:
            waiting = self._batch.get(key)
        if waiting is not None:
            check_size(key, len(waiting[0]), self.max_entry_size)  # as a row read back
            return waiting[0]
        try:
            found = self._rows(
                "SELECT typeof(data), CASE WHEN typeof(data) = 'blob' THEN length(data) END, "
                "CASE WHEN typeof(data) = 'blob' AND length(data) <= ? THEN data END, "
                "CASE WHEN typeof(used) IN ('real', 'integer') THEN used END "
                "FROM objects WHERE key = ?", (self.max_entry_size, key))
        except sqlite3.DataError:  # a value over the length limit: never loaded
            raise MalformedObject(f"{key}: a stored value over the size limit") from None
        except TableUnavailable as exc:
            log.debug("cache: reading %s failed: %s", key, exc)
            return None
        if not found:
            return None
        kind, size, data, used = found[0]
        if kind != "blob" or not isinstance(size, int):
            raise MalformedObject(f"{key}: not a stored object ({kind})")
        check_size(key, size, self.max_entry_size)
        if not isinstance(data, bytes):
            raise MalformedObject(f"{key}: not a stored object")
        if touch and used is not None and time.time() - used > self.touch_interval:
            with contextlib.suppress(sqlite3.Error, TableUnavailable):
                self._change("UPDATE objects SET used = ? WHERE key = ?", (time.time(), key))
        return data

    def put(self, key: str, data: bytes) -> bool | None:
        """True if stored (it joins the batch; a key that was already in the table is
        ignored when the batch is written), False if already waiting in it, None where
        there is no table (the caller stores a file)."""
        # over SQLite's ceiling on a row (its key, value and time): a file holds it
        if self.read_only or len(data) + len(key) + _ROW_OVERHEAD > self._max_length:
            return None
        with self._lock:
            if self._connect(True) is None:
                return None
            if key in self._batch:
                return False
            self._batch[key] = (data, time.time())
            self._batch_bytes += len(data)
            if len(self._batch) == 1:
                self._due = time.monotonic() + BATCH_SECONDS
                self._wake_writer()
            elif time.monotonic() >= self._due or self._batch_bytes >= BATCH_BYTES:
                self._write_batch()
        return True

    def flush(self) -> None:
        """Write the rows waiting now (before the run syncs the file system)."""
        with self._lock:
            self._write_batch()

    def _wake_writer(self) -> None:
        """(Under the lock.) Have the writer thread write the batch when it is due; where no
        thread can start, write it at once."""
        if self._writer is not None:
            self._batch_waiting.notify()
            return
        # a daemon: an exit that skipped close() loses the rows waiting (misses)
        writer = threading.Thread(target=self._write_when_due, daemon=True,
                                  name="attest-entry-writer")
        try:
            writer.start()
        except RuntimeError:  # no thread to be had (a process limit)
            self._write_batch()
            return
        self._writer = writer

    def _write_when_due(self) -> None:
        """The writer thread: writes each batch no store wrote when it was due; it ends
        after LINGER_SECONDS without one (the next batch starts another)."""
        with self._batch_waiting:
            try:
                self._serve_batches()
            finally:  # however it ends: the next batch starts another writer
                self._writer = None

    def _serve_batches(self) -> None:
        """(Under the lock, on the writer thread.)"""
        while True:
            if not self._batch:
                # a wait that timed out may still have been notified (a batch began while
                # it took the lock back): it ends only if none is waiting now
                if not self._batch_waiting.wait(LINGER_SECONDS) and not self._batch:
                    return
                continue
            left = self._due - time.monotonic()
            if left > 0:
                self._batch_waiting.wait(left)
            else:
                self._write_batch()

    def _write_batch(self) -> None:
        """(Under the lock.) The waiting rows in one transaction. Rows it cannot write go to
        ``unwritten`` (files), never silently away."""
        rows, self._batch, self._batch_bytes = self._batch, {}, 0
        if not rows:
            return
        conn = self._connect(True)
        try:
            if conn is None:
                raise TableUnavailable(f"{self.path}: no table")
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT OR IGNORE INTO objects (key, data, used) VALUES (?, ?, ?)",
                             [(key, data, used) for key, (data, used) in rows.items()])
            conn.execute("COMMIT")
            return
        except (sqlite3.DatabaseError, TableUnavailable) as exc:
            problem: Exception = exc
            self._roll_back()
            if getattr(exc, "sqlite_errorcode", None) in _BROKEN_CODES:
                self.broken = True  # files for the rest of this process
                self._close_connection()
                self._move_aside(exc)
        except BaseException:  # an interrupt, no memory: the rows still become files
            self._roll_back()
            self._hand_back(rows, "interrupted")
            raise
        self._hand_back(rows, problem)

    def _roll_back(self) -> None:
        conn = self._conn
        if conn is not None and conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")

    def _hand_back(self, rows: dict[str, tuple[bytes, float]], problem: object) -> None:
        """Rows a batch could not write, to ``unwritten`` (files)."""
        if self._unwritten is None:
            log.warning("cache: %d entries not stored in %s: %s", len(rows), self.path,
                        problem)
            return
        log.debug("cache: %d entries stored as files: %s", len(rows), problem)
        self._unwritten({key: data for key, (data, _) in rows.items()})

    def contains(self, key: str) -> bool:
        with self._lock:
            if key in self._batch:
                return True
        try:
            return bool(self._rows("SELECT 1 FROM objects WHERE key = ?", (key,)))
        except (TableUnavailable, sqlite3.DataError):
            return False

    def names(self, prefix: str, limit: int) -> set[str] | None:
        """The keys under ``prefix`` without it; None past ``limit`` (or when the table
        cannot say: then every name is asked for)."""
        with self._lock:  # first: a row leaves the batch only for the table (or a file)
            waiting = [key[len(prefix):] for key in self._batch if key.startswith(prefix)]
        try:
            found = self._rows("SELECT key FROM objects WHERE key >= ? AND key < ? LIMIT ?",
                               (prefix, _after(prefix), limit + 1))
        except (TableUnavailable, sqlite3.DataError):
            return None
        out = {str(key)[len(prefix):] for (key,) in found or () if _valid(key)}
        out.update(waiting)
        return None if len(out) > limit else out

    def delete(self, key: str) -> None:
        with self._lock:
            waiting = self._batch.pop(key, None)
            if waiting is not None:
                self._batch_bytes -= len(waiting[0])
        self._change("DELETE FROM objects WHERE key = ?", (key,))

    def objects(self, prefix: str = "") -> Iterator[StoredObject]:
        """Every row under ``prefix`` with its size and last use; a row whose key or value
        is over the length limit (planted) is left out (``clear`` removes it)."""
        self.flush()
        sql = ("SELECT key, CASE WHEN typeof(data) = 'blob' THEN length(data) END, "
               "CASE WHEN typeof(used) IN ('real', 'integer') THEN used END FROM objects ")
        try:
            found = self._rows(sql + "WHERE key >= ? AND key < ?", (prefix, _after(prefix)))
        except sqlite3.DataError:  # one oversized row: read them one at a time
            found = []
            for (rowid,) in self._rows("SELECT rowid FROM objects") or ():
                with contextlib.suppress(sqlite3.DataError):
                    found += self._rows(sql + "WHERE rowid = ?", (rowid,)) or []
        for key, size, used in found or ():
            if _valid(key) and key.startswith(prefix) and isinstance(size, int) \
                    and used is not None:
                yield StoredObject(key=key, size=size, last_used=float(used))

    def clear(self) -> None:
        """Every row, planted ones included, and the files moved aside."""
        with self._lock:
            self._batch, self._batch_bytes = {}, 0
        self._change("DELETE FROM objects", ())
        self.give_back_space()
        for suffix in ("", *_SIDECARS):
            with contextlib.suppress(OSError):
                os.unlink(self.path + BROKEN_SUFFIX + suffix)

    def give_back_space(self) -> None:
        """After deletions (a prune): return the freed pages to the file system (the
        pragma frees them as its rows are stepped through, which fetching them does)."""
        if not self.read_only:
            self.flush()
            with contextlib.suppress(sqlite3.Error, TableUnavailable):
                self._rows("PRAGMA incremental_vacuum")

    def close(self) -> None:
        """Close the connection: the last one of all processes folds the log into the
        file."""
        with self._lock:
            self._write_batch()
            self._close()

    def _close_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    def _close(self) -> None:
        self._close_connection()
        if self._flock_fd is not None:
            os.close(self._flock_fd)  # releases the shared lock
            self._flock_fd = None


_TABLES: weakref.WeakSet[EntryTable] = weakref.WeakSet()


_INHERITED: list[sqlite3.Connection] = []  # a forked child's: never used, never closed


def _after_fork() -> None:
    """In a forked child: each table's lock may have been held by a thread that is not
    there, its batch is the parent's to write, and its connection (which SQLite forbids
    using across a fork; closing it could fold the parent's log in) and its lock file's
    descriptor (shared with the parent) are the parent's: the child opens its own."""
    for table in list(_TABLES):
        table._reset()
        if table._conn is not None:
            _INHERITED.append(table._conn)
        table._conn = None
        table._flock_fd = None


os.register_at_fork(after_in_child=_after_fork)


def _shared_lock(fd: int) -> bool:
    """Take the shared lock, waiting at most BUSY_SECONDS (a move aside is a few renames;
    a lock held longer is not one, and must not hang the run)."""
    deadline = time.monotonic() + BUSY_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)


def _master(conn: sqlite3.Connection) -> set[tuple[Any, ...]]:
    return {tuple(row) for row in conn.execute("SELECT type, name, sql FROM sqlite_master")}


def _valid(key: object) -> bool:
    return isinstance(key, str) and _KEY.fullmatch(key) is not None


_ESCAPE = re.compile(r"\\([0-7]{3})")


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
                # octal escapes of the kernel: \040 space, \011 tab, \012 newline, \134 "\"
                mount = _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), fields[4])
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
