"""Is an LZ4 frame complete? Walk its block headers without decompressing anything.

memray compresses a capture into one LZ4 frame when the profiled process exits. A capture
cut short (a full disk, a copy interrupted) can still decode part-way, and memray's reader
then returns figures for only the part it read, sometimes without any error. The frame's
own structure says whether the file is whole: every block announces its length, and the
frame ends with a zero-length block (the EndMark) and, if the header says so, a checksum.
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

MAGIC = b"\x04\x22\x4d\x18"


def frame_is_complete(fh: BinaryIO) -> bool:
    """True when ``fh`` holds one whole LZ4 frame (header, blocks, EndMark, checksum) and
    nothing after it; reads only headers, so a large capture costs a few seeks per MiB."""
    size = os.fstat(fh.fileno()).st_size
    head = fh.read(6)
    if len(head) < 6 or head[:4] != MAGIC:
        return False
    flags = head[4]
    if flags >> 6 != 1:  # version 01 is the only one defined
        return False
    pos = 6 + (8 if flags & 0x08 else 0) + (4 if flags & 0x01 else 0) + 1  # header checksum
    block_checksum = 4 if flags & 0x10 else 0
    content_checksum = 4 if flags & 0x04 else 0
    while pos + 4 <= size:
        fh.seek(pos)
        (word,) = struct.unpack("<I", fh.read(4))
        pos += 4
        if word == 0:  # EndMark
            return pos + content_checksum == size
        pos += (word & 0x7FFFFFFF) + block_checksum
    return False
