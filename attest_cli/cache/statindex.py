"""Don't re-hash what did not change: a persistent (dev, inode, size, mtime, ctime) -> digest index.

A re-run over unchanged inputs only ``lstat``s them. ``ctime`` is in the signature because
extracting an archive and ``mv``-ing it into place can leave size, mtime and even the inode
number as they were, but never the ctime. Files modified in the last two seconds are hashed
but not remembered ("racily clean", as git calls it): their mtime may not have ticked yet
when they change again.

The index is a JSON file written atomically at the end of a run; two concurrent runs simply
race to write it (it is only an accelerator, every entry is re-validated against ``lstat``).
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from attest_cli.atomic import write_atomic
from attest_cli.cache.parallel_hash import UNKNOWN, Hashed, SharedHashing
from attest_cli.compactjson import dumps, loads
from attest_cli.digest import bytes_digest, file_digest

log = logging.getLogger("attest.cache")

INDEX_VERSION = 1
RACY_SECONDS = 2.0
# Files below 8 MiB are hashed from one read() (fastest here); bigger ones by digest.file_digest
# (mmap, BLAKE3 threads).
_SMALL = 8 << 20
MAX_ENTRIES = 200_000

Signature = tuple[int, int, int, int, int]


class FileState(NamedTuple):
    """A file as it is now: what the key and the manifest need to know about it.

    A named tuple, not a frozen dataclass: thousands are made per lookup and a frozen
    dataclass's ``__init__`` costs several times more."""

    path: str  # relative POSIX path
    kind: str  # file | symlink | dir (an empty directory among inputs)
    mode: int  # permission bits (of the link's target when followed)
    size: int
    digest: str
    signature: Signature
    target: str | None = None  # link text of a symlink
    # a followed symlink (inputs): what it points to - "file:<digest>", "dir" (its files
    # are listed under the link's path), "missing" or "special" - and that target's stat
    # signature, since editing the target leaves the link's own lstat unchanged
    target_state: str | None = None
    target_signature: Signature | None = None

    @property
    def executable(self) -> bool:
        return bool(self.mode & 0o111)


def signature_of(st: os.stat_result) -> Signature:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class StatIndex:
    """Thread-safe digest memo keyed by absolute path and validated by the stat signature."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()  # not _lock: its holders read the entries
        self._loaded: dict[str, tuple[Signature, str]] | None = None
        self._dirty = False
        self._seen: set[str] = set()
        self.hashed = 0  # files whose content was read this run (for tests and benchmarks)

    @property
    def _entries(self) -> dict[str, tuple[Signature, str]]:
        """Read at first use: a run whose steps are all up to date
        (:mod:`attest_cli.cache.fresh`) never needs it, and parsing it was ~25 ms at
        10,000 files."""
        if self._loaded is None:
            with self._load_lock:
                if self._loaded is None:
                    self._loaded = self._load(self.path) if self.path is not None else {}
        return self._loaded

    @_entries.setter
    def _entries(self, value: dict[str, tuple[Signature, str]]) -> None:
        self._loaded = value

    @staticmethod
    def _load(path: Path) -> dict[str, tuple[Signature, str]]:
        entries: dict[str, tuple[Signature, str]] = {}
        try:
            data = loads(path.read_bytes())
            if data.get("version") == INDEX_VERSION:
                for name, (sig, digest) in data["entries"].items():
                    entries[name] = (tuple(sig), digest)
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.debug("ignoring unreadable stat index %s: %s", path, exc)
            entries.clear()
        return entries

    def save(self) -> None:
        if self.path is None or not self._dirty:
            return
        with self._lock:
            if len(self._entries) > max(MAX_ENTRIES, 4 * len(self._seen)):
                # files that come and go (build trees) would grow the index forever:
                # past the cap, keep what this run looked at
                self._entries = {k: v for k, v in self._entries.items() if k in self._seen}
            payload = dumps({"version": INDEX_VERSION, "entries": {
                k: [sig, d] for k, (sig, d) in self._entries.items()}})
            self._dirty = False
        # no fsync: after a power cut the index is the old one, empty or torn, and each of
        # those is safe (an entry is used only while the file still has its signature; a
        # file that does not parse is ignored). A storing run syncs the file system anyway.
        write_atomic(self.path, payload, sync=False)

    def digest(self, full: Path | str, st: os.stat_result) -> str:
        """The content digest of ``full`` (whose ``lstat`` is ``st``), read only if needed."""
        sig = signature_of(st)
        name = str(full)
        with self._lock:
            self._seen.add(name)
            known = self._entries.get(name)
        if known is not None and known[0] == sig:
            return known[1]
        digest = _hash(name, st.st_size)
        self._remember(name, st, sig, digest)
        return digest

    def _remember(self, name: str, st: os.stat_result, sig: Signature, digest: str) -> None:
        self._remember_all([(name, st.st_mtime_ns, sig, digest)])

    def _remember_all(self, done: Sequence[tuple[str, int, Signature, str]]) -> None:
        """Digests just computed: (path, mtime_ns, signature, digest); racy ones are not
        kept. One lock and one clock read for a whole scan."""
        settled = time.time_ns() - int(RACY_SECONDS * 1e9)
        entries = self._entries
        with self._lock:
            self.hashed += len(done)
            for name, mtime_ns, sig, digest in done:
                if mtime_ns <= settled:
                    entries[name] = (sig, digest)
                    self._dirty = True

    def scan(self, root: Path, rels: Sequence[str], *, follow: bool = False,
             stats: Mapping[str, os.stat_result] | None = None) -> list[FileState]:
        """The state of every path; unchanged files (same signature) are not read at all.

        With ``follow`` (inputs), a symlink's state also says what its target is, and a
        regular target's content digest is memoised under the link's path with the
        *target's* signature: an edited target is re-hashed though the link did not change.
        A directory (an empty one, listed by ``expand(follow_links=True)``) has no content.

        The unchanged case is one ``lstat`` and a dict lookup per file. Files to hash are
        shared with a helper process when there is enough work for two cores
        (:mod:`attest_cli.cache.parallel_hash`); a big file is hashed by BLAKE3's own
        threads (``digest.file_digest``). See docs/cache.md.

        ``stats`` holds ``lstat`` results already taken for some paths (by
        :func:`attest_cli.pathspec.expand`, moments before): they are not taken again.
        """
        base = str(root)
        out: list[FileState | None] = [None] * len(rels)
        # (index, rel, full path, lstat); lstat None: nobody has looked at it yet
        todo: list[tuple[int, str, str, os.stat_result | None]] = []
        prefix = base.rstrip("/") + "/"
        # started only once there is enough to hash
        shared = SharedHashing(_stat_and_hash, expected=len(rels), big=_SMALL)
        try:
            self._stat_all(rels, prefix, stats, follow, out, todo, shared)
            if not todo:  # the usual re-run: nothing to hash
                return [s for s in out if s is not None]
            results = iter(shared.finish())
        finally:
            shared.close()
        done = []
        for i, rel, full, st in todo:
            if st is not None and st.st_size >= _SMALL:  # not shared: BLAKE3's threads
                digest = _hash(full, st.st_size)
            elif st is not None:
                hashed = next(results)
                assert hashed is not None  # a file of known size always has a digest
                digest = hashed[0]
            else:
                hashed = next(results)
                if hashed is None:  # not a small regular file: looked at here
                    st = os.lstat(full)
                    if not stat.S_ISREG(st.st_mode):
                        self._not_a_file(i, rel, full, st, follow, out)
                        continue
                    digest = _hash(full, st.st_size)
                else:
                    digest, fields = hashed
                    assert fields is not None
                    dev, ino, size, mtime_ns, ctime_ns, mode = fields
                    sig = (dev, ino, size, mtime_ns, ctime_ns)
                    out[i] = FileState(rel, "file", mode & 0o7777, size, digest, sig)
                    done.append((full, mtime_ns, sig, digest))
                    continue
            size = st.st_size
            sig = (st.st_dev, st.st_ino, size, st.st_mtime_ns, st.st_ctime_ns)  # signature_of
            # positional: keywords cost a third more, for thousands of files
            out[i] = FileState(rel, "file", st.st_mode & 0o7777, size, digest, sig)
            done.append((full, st.st_mtime_ns, sig, digest))
        self._remember_all(done)
        return [s for s in out if s is not None]

    def _stat_all(self, rels: Sequence[str], prefix: str,
                  stats: Mapping[str, os.stat_result] | None, follow: bool,
                  out: list[FileState | None],
                  todo: list[tuple[int, str, str, os.stat_result | None]],
                  shared: SharedHashing) -> None:
        """:meth:`scan`'s first pass: known files into ``out``, the others into ``todo``
        (and the small ones to ``shared``, which may start hashing them meanwhile). A file
        the index does not know at all (a first run) is not even ``lstat``-ed here: whoever
        hashes it does, so that the two processes share that pass too."""
        entries = self._entries
        seen = self._seen
        add = shared.add
        for i, rel in enumerate(rels):
            full = prefix + rel
            st = stats.get(rel) if stats else None
            seen.add(full)
            if st is None:
                if full not in entries:
                    todo.append((i, rel, full, None))
                    add(full, UNKNOWN, i)
                    continue
                st = os.lstat(full)
            if stat.S_ISREG(st.st_mode):  # the usual case first
                known = entries.get(full)
                if known is not None:
                    sig = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
                    if known[0] == sig:  # the usual re-run: positional, signature inlined
                        out[i] = FileState(rel, "file", st.st_mode & 0o7777, st.st_size,
                                           known[1], sig)
                        continue
                todo.append((i, rel, full, st))
                if st.st_size < _SMALL:  # a big one is hashed here, by BLAKE3's threads
                    add(full, st.st_size, i)
            else:
                self._not_a_file(i, rel, full, st, follow, out)

    def _not_a_file(self, i: int, rel: str, full: str, st: os.stat_result, follow: bool,
                    out: list[FileState | None]) -> None:
        """A directory, a symlink or a special file among the paths (:meth:`scan`)."""
        if stat.S_ISDIR(st.st_mode):
            out[i] = FileState(path=rel, kind="dir", mode=stat.S_IMODE(st.st_mode),
                               size=0, digest="", signature=signature_of(st))
        elif stat.S_ISLNK(st.st_mode):
            target = os.readlink(full)
            link = FileState(path=rel, kind="symlink", mode=0o777, size=0,
                             digest=bytes_digest(os.fsencode(target)),
                             signature=signature_of(st), target=target)
            out[i] = self._follow(full, link) if follow else link
        else:
            # a FIFO, socket or device has no content to hash (reading a FIFO would
            # block the run): it is not part of the key or of an entry
            log.debug("skipping %s: not a regular file or symlink", rel)

    def _follow(self, full: str, link: FileState) -> FileState:
        """``link`` with what its target is now (see :meth:`scan`)."""
        try:
            st = os.stat(full)
        except OSError:
            return link._replace(target_state="missing")
        sig = signature_of(st)
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            return link._replace(mode=mode, target_state="dir", target_signature=sig)
        if not stat.S_ISREG(st.st_mode):
            return link._replace(target_state="special", target_signature=sig)
        return link._replace(mode=mode, target_state="file:" + self.digest(full, st),
                             target_signature=sig)

    def state(self, root: Path, rel: str) -> FileState:
        return self.scan(root, [rel])[0]


def _hash(full: str, size: int) -> str:
    if size >= _SMALL:
        return file_digest(full)
    return bytes_digest(read_whole(full, size))


def read_whole(full: str, size: int) -> bytes:
    """A regular file's content, ``size`` (its ``lstat``) expected.

    os.open/os.read, not open(): the buffered file object cost more than reading and
    hashing a 25 KB file (a cold key over 10,000 inputs, issue 14). O_NONBLOCK: had a FIFO
    replaced the file since its lstat, open must not wait on it."""
    fd = os.open(full, os.O_RDONLY | os.O_NOCTTY | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        data = os.read(fd, size + 1)
        if len(data) != size:  # grown, shrunk or a short read: to the end, whatever it is
            chunks = [data]
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            data = b"".join(chunks)
    finally:
        os.close(fd)
    return data


def _stat_and_hash(full: str, size: int) -> Hashed:
    """:class:`SharedHashing`'s ``hash_one``: a file of known size, or one to ``lstat``
    first (None when it is not a regular file under 8 MiB: :meth:`StatIndex.scan` looks)."""
    if size >= 0:
        return _hash(full, size), None
    st = os.lstat(full)
    if not stat.S_ISREG(st.st_mode) or st.st_size >= _SMALL:
        return None
    return _hash(full, st.st_size), (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns,
                                     st.st_ctime_ns, st.st_mode)


def restat(root: Path, states: Sequence[FileState]) -> list[str]:
    """Paths whose stat signature differs from ``states`` now (changed while a step ran)."""
    changed = []
    prefix = str(root).rstrip("/") + "/"
    lstat = os.lstat
    for s in states:
        try:
            st = lstat(prefix + s.path)
            if (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) \
                    != s.signature:  # signature_of, inlined: once per input per stored step
                changed.append(s.path)
            elif s.target_signature is not None and \
                    signature_of(os.stat(prefix + s.path)) != s.target_signature:
                changed.append(s.path)  # the link stayed, its target changed
        except OSError:
            changed.append(s.path)
    return changed
