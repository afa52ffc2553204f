"""What is this file? Decided by content, never by name (both profiles are ``*.prof``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from attest_cli.errors import InputError

CPU, MEMORY, RUN, BENCHMARK = "cpu", "memory", "run", "benchmark"
KINDS = {CPU: "a pyinstrument CPU profile", MEMORY: "a memray memory capture",
         RUN: "an attest run report", BENCHMARK: "an attest benchmark result"}
EXPECTED = ("expected a pyinstrument CPU profile (session JSON), a memray capture, an attest "
            "run report or an attest benchmark result")

LZ4_FRAME_MAGIC = b"\x04\x22\x4d\x18"  # memray compresses its capture on exit
MEMRAY_MAGIC = b"memray"  # an uncompressed capture
RUN_SCHEMA = "attest.run-report"
BENCHMARK_SCHEMA = "attest.benchmark"
LINK_SCHEMA = "attest.profile-link"
PYINSTRUMENT_KEYS = {"start_time", "duration", "sample_count", "frame_records"}


def detect(path: Path) -> tuple[str, Any]:
    """The kind of ``path`` and, for JSON kinds, its parsed content (read once)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
            if head.startswith((LZ4_FRAME_MAGIC, MEMRAY_MAGIC)):
                return MEMORY, None
            raw = head + fh.read()
    except FileNotFoundError:
        raise InputError("no such file", path=str(path)) from None
    except IsADirectoryError:
        raise InputError(f"is a directory; {EXPECTED}", path=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path=str(path)) from None
    if not raw.strip():
        raise InputError(f"empty file; {EXPECTED}", path=str(path))
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"unrecognised binary content; {EXPECTED}", path=str(path)) from None
    except json.JSONDecodeError as exc:
        what = "truncated or corrupt JSON" if raw.lstrip()[:1] in (b"{", b"[") else \
            "unrecognised content"
        raise InputError(f"{what} ({exc.msg}); {EXPECTED}", path=str(path),
                         line=exc.lineno) from None
    if isinstance(data, dict):
        schema = data.get("schema")
        if schema == RUN_SCHEMA:
            return RUN, data
        if schema == BENCHMARK_SCHEMA:
            return BENCHMARK, data
        if schema == LINK_SCHEMA:
            raise InputError("this is the link file written beside a profile; analyze the "
                             "profile itself", path=str(path))
        if data.keys() >= PYINSTRUMENT_KEYS:
            return CPU, data
    raise InputError(f"JSON of an unknown kind; {EXPECTED}", path=str(path))
