"""Atomic file writes: a crash never leaves a half-written file where a reader looks.

Two promises beyond atomicity (docs/security.md, "Files attest writes"):

* modes honour the umask (``0666 & ~umask``: 0644 under umask 022, 0600 under 077), like
  any tool that creates files; only callers that pass ``mode`` (private keys: 0600) differ;
* a rename never replaces something that is not a regular file. ``-``, ``/dev/stdout``,
  ``/dev/stderr`` and ``/dev/fd/N`` write attest's own descriptor, and a character device
  (``/dev/null``, a tty) receives the bytes as a stream; a directory, FIFO, block device,
  socket, or a symlink to anything but a character device is refused with one
  :class:`InputError` line (a FIFO could block forever waiting for a reader). Symlinks are
  refused rather than followed: renaming over one would replace the link, and writing
  through it would let a planted link redirect attest's output.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import os
import re
import stat
import threading
from pathlib import Path

from attest_cli.errors import InputError
from attest_cli.regularfile import kind_of

STREAM = "stream"
FILE = "file"
_FD_PATH = re.compile(r"/(?:dev/fd|proc/self/fd)/(\d+)")
_STD_NAMES = {"-": 1, "/dev/stdout": 1, "/dev/stderr": 2}


def _inherited_fd(path: str) -> int | None:
    """``-``, /dev/stdout, /dev/stderr, /dev/fd/N: attest's own descriptor, written as is
    (so ``--report /dev/stdout > out.json`` appends to the shell's file)."""
    if path in _STD_NAMES:
        return _STD_NAMES[path]
    m = _FD_PATH.fullmatch(path)
    return int(m.group(1)) if m else None


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows."""
    with contextlib.suppress(OSError, ValueError), \
            open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    old = os.umask(0o022)
    os.umask(old)
    return old


def target_kind(path: str | Path, *, label: str | None = None) -> str:
    """:data:`FILE` (absent or regular: write atomically) or :data:`STREAM` (write in
    place); anything else raises one :class:`InputError` naming the path."""
    name = label or str(path)
    if _inherited_fd(str(path)) is not None:
        return STREAM
    try:
        link = os.lstat(path)
    except FileNotFoundError:
        return FILE
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror}", path=name) from None
    if stat.S_ISREG(link.st_mode):
        return FILE
    try:
        info = os.stat(path)
    except OSError:
        raise InputError("is a dangling symlink; refusing to write through it",
                         path=name) from None
    if stat.S_ISCHR(info.st_mode):
        return STREAM
    if stat.S_ISLNK(link.st_mode):
        what = "a regular file" if stat.S_ISREG(info.st_mode) else kind_of(info.st_mode)
        raise InputError(f"is a symlink to {what}; refusing to replace or follow it "
                         "(name the real file)", path=name)
    if stat.S_ISDIR(info.st_mode):
        raise InputError("is a directory", path=name)
    raise InputError(f"is {kind_of(info.st_mode)}; refusing to replace it", path=name)


def write_atomic(path: str | Path, data: bytes | str, *, mode: int | None = None,
                 sync: bool = True, label: str | None = None,
                 follow_symlinks: bool = False) -> Path:
    """Write ``data`` to a temp file beside ``path``, fsync it, then rename over ``path``.

    ``mode`` defaults to ``0666 & ~umask``. ``sync=False`` skips the fsync (about 3 ms a
    file here) for data whose readers verify it anyway - content-addressed cache blobs: a
    power cut can then leave a torn file, but never a half-written one in place while the
    system runs. A stream target (see :func:`target_kind`) is written in place.
    ``follow_symlinks`` replaces a symlink's final target instead of refusing it: for
    files the user edits through attest and may keep in a dotfiles repository (config).
    """
    if follow_symlinks and _inherited_fd(str(path)) is None:
        path = Path(os.path.realpath(path))
    target = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    if target_kind(path, label=label) == STREAM:
        _write_stream(str(path), payload, label or str(path))
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(target.parent, f".{target.name}.")
    try:
        os.fchmod(fd, mode if mode is not None else 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return target


_TEMP_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | \
    getattr(os, "O_CLOEXEC", 0)


def _create_temp(directory: Path, prefix: str) -> tuple[int, str]:
    """``tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=directory)``, mode 0600, without
    importing tempfile and random (~1 ms of every invocation): 12 random hex digits."""
    for _ in range(100):
        name = os.path.join(os.path.abspath(directory), f"{prefix}{os.urandom(6).hex()}.tmp")
        try:
            return os.open(name, _TEMP_FLAGS, 0o600), name
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", str(directory))


def _write_stream(path: str, payload: bytes, name: str) -> None:
    """Write to an inherited descriptor or a character device (opened non-blocking)."""
    inherited = _inherited_fd(path)
    if inherited is not None:
        try:
            fd = os.dup(inherited)
        except OSError:
            raise InputError("is not an open descriptor", path=name) from None
    else:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
        except OSError as exc:
            raise InputError(f"cannot write: {exc.strerror}", path=name) from None
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
    _write_all_and_close(fd, payload)


def _write_all_and_close(fd: int, payload: bytes) -> None:
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


_object_names = itertools.count()


def write_object(path: str, data: bytes) -> None:
    """Atomically write one of attest's own objects (cache blobs, manifests, records).

    :func:`write_atomic` without what these paths never need, which was most of a cold
    store's per-step cost: no check of the target's kind (attest names these files itself,
    under its own directory; a rename replaces a planted symlink, never writes through it,
    and fails on a directory), no ``/proc`` read of the umask (``open`` with 0o666 applies
    it, as :func:`write_atomic`'s default mode does), no random temp name (process, thread
    and a counter are unique), no fsync (the readers verify every object), and the parent
    directory made only when the first attempt finds it missing. The temp name is
    ``.<name>.<unique>.tmp``, which cache maintenance sweeps when a writer died.
    """
    parent, name = os.path.split(path)
    tmp = os.path.join(parent, f".{name}.{os.getpid()}-{threading.get_ident()}-"
                               f"{next(_object_names)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        fd = os.open(tmp, flags, 0o666)
    except FileNotFoundError:
        os.makedirs(parent or ".", exist_ok=True)
        fd = os.open(tmp, flags, 0o666)
    try:
        _write_all_and_close(fd, data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
