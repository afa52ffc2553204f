"""Reading a file a user named, refusing anything that is not a regular file.

``-p /dev/zero`` would read forever and a FIFO with no writer blocks ``open()`` forever,
so every input attest parses (pipeline, config, receipt, policy, report) is opened
non-blocking, checked with ``fstat`` on the open descriptor (no check-then-open race)
and read with a byte cap.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from attest_cli.errors import InputError

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def kind_of(mode: int) -> str:
    """A short name for a non-regular file type, for one-line errors."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def read_regular(path: str | Path, *, max_bytes: int, label: str | None = None,
                 expected: str = "a file") -> bytes:
    """The bytes of ``path``: a regular file of at most ``max_bytes``, else one InputError."""
    name = label or str(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise InputError("no such file", path=name) from None
    except IsADirectoryError:
        raise InputError(f"is a directory, expected {expected}", path=name) from None
    except PermissionError:
        raise InputError("permission denied", path=name) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=name) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"is {kind_of(info.st_mode)}, expected {expected} "
                             "(only regular files are read)", path=name)
        if info.st_size > max_bytes:
            raise InputError(f"file is {info.st_size} bytes, larger than the {max_bytes} "
                             "allowed", path=name)
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:  # grew while we read it
                raise InputError(f"file is larger than the {max_bytes} bytes allowed",
                                 path=name)
        return b"".join(chunks)
    except IsADirectoryError:
        raise InputError(f"is a directory, expected {expected}", path=name) from None
    finally:
        os.close(fd)
