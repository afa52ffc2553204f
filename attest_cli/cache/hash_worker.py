"""The second hasher: a bare interpreter that hashes files named on stdin (see parallel_hash).

Run as ``python -I -S hash_worker.py <dir holding the blake3 package> <big>``: no attest
module is imported (nothing here may grow its start-up), only the standard library and
``blake3``.

stdin: records ``<size>\\t<path>\\0``, in the order to hash them. A size of ``-1`` means
nobody has ``lstat``-ed the file: it is ``lstat``-ed here first, and one that is not a
regular file under ``<big>`` bytes is not read. stdout, per record and in the same order:
one status byte (``+`` hashed, ``-`` could not be read, ``n`` not a small regular file),
the 32-byte BLAKE3 digest of the content, and for a ``-1`` record what ``lstat`` said
(dev, ino, size, mtime_ns, ctime_ns, mode as ``<QQqqqQ``; zeros otherwise). The parent
does every ``-`` and ``n`` again itself. Results are flushed before every blocking read,
so the parent sees progress as it happens.
"""

from __future__ import annotations

import os
import stat
import struct
import sys

FLAGS = os.O_RDONLY | os.O_NOCTTY | os.O_CLOEXEC | os.O_NONBLOCK
STAT = struct.Struct("<QQqqqQ")  # parallel_hash.STAT
NO_STAT = bytes(STAT.size)
FAILED = b"-" + bytes(32) + NO_STAT
REFUSED = b"n" + bytes(32) + NO_STAT


def _digest(hasher: type, name: bytes, size: int) -> bytes:
    # the same reading as statindex._hash: one read of the expected size, then to the end
    fd = os.open(name, FLAGS)
    try:
        data = os.read(fd, size + 1)
        h = hasher(data)
        if len(data) != size:  # grown, shrunk or a short read: to the end, whatever it is
            while chunk := os.read(fd, 1 << 20):
                h.update(chunk)
    finally:
        os.close(fd)
    return h.digest()


def _one(hasher: type, name: bytes, size: int, big: int) -> bytes:
    if size >= 0:
        return b"+" + _digest(hasher, name, size) + NO_STAT
    st = os.lstat(name)  # before the read, as the parent's scan does
    if not stat.S_ISREG(st.st_mode) or st.st_size >= big:
        return REFUSED
    return b"+" + _digest(hasher, name, st.st_size) + STAT.pack(
        st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode)


def _write(out: list[bytes]) -> None:
    data = memoryview(b"".join(out))
    while data:
        data = data[os.write(1, data):]
    out.clear()


def main() -> int:
    sys.path.insert(0, sys.argv[1])
    big = int(sys.argv[2])
    from blake3 import blake3

    pending = b""
    out: list[bytes] = []
    try:
        while chunk := os.read(0, 1 << 16):
            *records, pending = (pending + chunk).split(b"\0")
            for record in records:
                size, _, name = record.partition(b"\t")
                try:
                    out.append(_one(blake3, name, int(size), big))
                except (OSError, ValueError):
                    out.append(FAILED)
                if len(out) >= 64:
                    _write(out)
            _write(out)
    except (BrokenPipeError, KeyboardInterrupt):  # the parent has what it needs, or left
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
