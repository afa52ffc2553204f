"""The second hasher: a bare interpreter that hashes files named on stdin (see parallel_hash).

Run as ``python -I -S hash_worker.py <dir holding the blake3 package>``: no attest module is
imported (nothing here may grow its start-up), only the standard library and ``blake3``.

stdin: records ``<size>\\t<path>\\0``, in the order to hash them (the parent sends its list
tail first). stdout: 33 bytes per record, in the same order: ``+`` and the 32-byte BLAKE3
digest of the file's content, or ``-`` and 32 zero bytes when the file could not be read
(the parent then hashes it itself and reports the real error). Results are flushed before
every blocking read, so the parent sees progress as it happens.
"""

from __future__ import annotations

import os
import sys

FLAGS = os.O_RDONLY | os.O_NOCTTY | os.O_CLOEXEC | os.O_NONBLOCK
FAILED = b"-" + bytes(32)


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
    return b"+" + h.digest()


def _write(out: list[bytes]) -> None:
    data = memoryview(b"".join(out))
    while data:
        data = data[os.write(1, data):]
    out.clear()


def main() -> int:
    sys.path.insert(0, sys.argv[1])
    from blake3 import blake3

    pending = b""
    out: list[bytes] = []
    try:
        while chunk := os.read(0, 1 << 16):
            *records, pending = (pending + chunk).split(b"\0")
            for record in records:
                size, _, name = record.partition(b"\t")
                try:
                    out.append(_digest(blake3, name, int(size)))
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
