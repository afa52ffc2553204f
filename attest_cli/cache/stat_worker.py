"""The helper of parallel_restat: a bare interpreter that checks files' ``lstat`` signatures.

Run as ``python -I -S stat_worker.py``; it imports nothing but built-in modules, so that
its start-up stays at the interpreter's own (~8 ms).

stdin: records ``<dev> <ino> <size> <mtime_ns> <ctime_ns>\\t<path>\\0``. stdout: one byte
per record, in order: ``=`` the file's ``lstat`` gives exactly that signature, ``!`` it
does not (or the file cannot be ``lstat``-ed). Everything is written once stdin ends.
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    data = bytearray()
    while chunk := os.read(0, 1 << 20):
        data += chunk
    out = bytearray()
    lstat = os.lstat
    for record in bytes(data).split(b"\0")[:-1]:
        sig, _, name = record.partition(b"\t")
        try:
            st = lstat(name)
            same = f"{st.st_dev} {st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}" \
                .encode() == sig
        except OSError:
            same = False
        out += b"=" if same else b"!"
    view = memoryview(out)
    try:
        while view:
            view = view[os.write(1, view):]
    except BrokenPipeError:  # the parent no longer waits
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
