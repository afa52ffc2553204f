"""Write restored outputs into the workspace without ever leaving it.

Manifest paths were already checked to be plain relative paths (:mod:`.manifest`). Here
every directory on the way is opened relative to its parent with ``O_NOFOLLOW``, so a
symlink already in the workspace - planted by an earlier entry, or by anyone - is never
followed while writing: the restore refuses instead. Files are written to a temp name in
their directory and renamed over the target, which replaces (never follows) a link there.

Modes come from the manifest, which may come from a hostile shared cache: only the
executable bit is taken from it. A file is restored ``0777`` or ``0666`` minus the umask, a
new directory ``0777`` minus the umask, an existing directory keeps its mode; setuid,
setgid, sticky and world-writable bits (beyond what the umask allows) never reach the disk.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Callable
from pathlib import Path

from attest_cli.cache.manifest import OutputFile
from attest_cli.pathspec import STATE_DIR

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


_UMASK_LOCK = threading.Lock()


def process_umask() -> int:
    """The umask, read without changing it where Linux allows (``/proc/self/status``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:  # elsewhere: set and restore (a moment other threads could see)
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def restored_mode(executable: bool, umask: int | None = None) -> int:
    """The mode a restored file gets: the executable bit from the entry, the rest from the
    umask - like a file the step would have created itself."""
    mask = process_umask() if umask is None else umask
    return (0o777 if executable else 0o666) & ~mask & 0o777


class UnsafeRestore(Exception):
    """A restore would have written outside the workspace or through a symlink."""


class WorkspaceWriter:
    """Creates files, links and directories below ``root``, refusing every symlink on the way."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
        # Directories opened so far, by relative path. Holding their fds also means that a
        # directory swapped for a symlink after we opened it is still the one written into.
        self._dirs: dict[str, int] = {"": self._root_fd}
        self.umask = process_umask()

    def close(self) -> None:
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()

    def __enter__(self) -> WorkspaceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _parent(self, rel: str, *, create: bool = True) -> tuple[int, str]:
        """An fd of the directory holding ``rel`` (opened without following links), and the
        name. The fd belongs to the writer: callers must not close it."""
        parts = rel.split("/")
        fd = self._root_fd
        path = ""
        for part in parts[:-1]:
            path = f"{path}/{part}" if path else part
            known = self._dirs.get(path)
            if known is not None:
                fd = known
                continue
            try:
                nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o777, dir_fd=fd)  # minus the umask
                nfd = self._open_dir(part, fd, rel)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafeRestore(f"refusing to write {rel!r}: '{part}' on its way "
                                        "is a symlink or not a directory") from None
                raise
            self._dirs[path] = nfd
            fd = nfd
        return fd, parts[-1]

    @staticmethod
    def _open_dir(part: str, parent: int, rel: str) -> int:
        try:
            return os.open(part, _DIR_FLAGS, dir_fd=parent)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise UnsafeRestore(f"refusing to write {rel!r}: '{part}' on its way "
                                    "is a symlink or not a directory") from None
            raise

    def write_file(self, rel: str, mode: int, fill: Callable[[int], None]) -> None:
        """Create ``rel`` atomically; ``fill(fd)`` writes the content. Of ``mode`` only the
        executable bit counts (:func:`restored_mode`)."""
        final = restored_mode(bool(mode & 0o111), self.umask)

        def create(dfd: int, tmp: str) -> None:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600,
                         dir_fd=dfd)
            try:
                fill(fd)
                os.fchmod(fd, final)
            finally:
                os.close(fd)
        self._place(rel, create)

    def write_symlink(self, rel: str, target: str) -> None:
        self._place(rel, lambda dfd, tmp: os.symlink(target, tmp, dir_fd=dfd))

    def _place(self, rel: str, create: Callable[[int, str], None]) -> None:
        """Make the object under a temp name beside ``rel``, then rename it into place."""
        dfd, name = self._parent(rel)
        tmp = f".{name}.{os.urandom(4).hex()}.tmp"
        try:
            create(dfd, tmp)
            self._replace(dfd, tmp, name, rel)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=dfd)
            raise

    def make_dir(self, rel: str) -> None:
        """Ensure the directory ``rel`` exists: a new one gets ``0777`` minus the umask, an
        existing one keeps its mode (an entry's recorded mode is never applied)."""
        dfd, name = self._parent(rel)
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o777, dir_fd=dfd)  # minus the umask
            os.close(os.open(name, _DIR_FLAGS, dir_fd=dfd))  # a directory, not a link
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise UnsafeRestore(f"refusing to restore directory {rel!r}: a symlink or "
                                    "file is in the way") from None
            raise

    def _replace(self, dfd: int, tmp: str, name: str, rel: str) -> None:
        try:
            os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except IsADirectoryError:
            raise UnsafeRestore(f"refusing to restore {rel!r}: a directory is in the "
                                "way") from None


def restore_files(root: Path, files: list[OutputFile], blob: Callable[[OutputFile], bytes]
                  ) -> None:
    """Restore ``files`` below ``root``; ``blob`` returns the verified content of a file.

    Nothing is ever restored into attest's own state (keys, history, cache): the loader
    already refuses outputs that reach it, this is the last line."""
    for f in files:
        if f.path.split("/", 1)[0] == STATE_DIR:
            raise UnsafeRestore(f"refusing to restore {f.path!r} into attest's state "
                                f"directory {STATE_DIR}/")
    if not files:
        return  # an unchanged re-run: open nothing
    with WorkspaceWriter(root) as writer:
        for f in files:
            if f.kind == "symlink":
                assert f.target is not None
                writer.write_symlink(f.path, f.target)
        for f in files:
            if f.kind != "file":
                continue
            data = blob(f)

            def fill(fd: int, data: bytes = data) -> None:
                _write_all(fd, data)
            writer.write_file(f.path, f.mode, fill)
        # directories last: empty ones are created (the others exist by now)
        for f in sorted((f for f in files if f.kind == "dir"), key=lambda f: f.path):
            writer.make_dir(f.path)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
