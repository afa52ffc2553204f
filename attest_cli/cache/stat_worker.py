"""The helper of parallel_restat: a bare interpreter that checks files' ``lstat`` signatures.

Run as ``python -I -S stat_worker.py``; it imports nothing but built-in modules, so that
its start-up stays at the interpreter's own (~8 ms).

stdin: a ``marshal`` (version 2) list of ``(path, (dev, ino, size, mtime_ns, ctime_ns))``.
stdout: one byte per record, in order: ``=`` the file's ``lstat`` gives exactly that
signature, ``!`` it does not (or the file cannot be ``lstat``-ed). Nothing is looked at
before stdin ends (the caller may send the list before the step it checks has ended), and
everything is written at once. Input that is not such a list gets no answer: the caller
then checks every file itself.
"""

from __future__ import annotations

import marshal
import os
import sys


def main() -> int:
    data = bytearray()
    while chunk := os.read(0, 1 << 20):
        data += chunk
    try:
        records = marshal.loads(data)
    except (EOFError, ValueError, TypeError):
        return 1
    out = bytearray()
    lstat = os.lstat
    try:
        for name, sig in records:
            try:
                st = lstat(name)
                same = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) == sig
            except OSError:
                same = False
            out += b"=" if same else b"!"
    except (TypeError, ValueError):  # not the records the caller sends
        return 1
    view = memoryview(out)
    try:
        while view:
            view = view[os.write(1, view):]
    except BrokenPipeError:  # the parent no longer waits
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
