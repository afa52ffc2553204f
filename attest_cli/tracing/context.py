"""W3C Trace Context (``traceparent`` / ``tracestate``) parsing and formatting.

Kept free of OpenTelemetry so it is cheap to import and easy to test table-driven. The rules
follow https://www.w3.org/TR/trace-context/ : a malformed value is *ignored* (the caller
starts a new trace), never an error; version ``ff`` is invalid; a future version is parsed
by its first four fields and may carry more after a dash.
"""

from __future__ import annotations

import re

from attest_cli.record import FrozenRecord

_HEX = "0123456789abcdef"
_PARENT_00 = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
# tracestate list members: key = simple-key / multi-tenant key; value = printable, no , =
_TS_KEY = re.compile(r"[a-z][a-z0-9_\-*/]{0,255}"
                     r"|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13}")
_TS_VALUE = re.compile(r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]")
MAX_TRACESTATE_MEMBERS = 32

# attest's own tracestate member: the head-sampling decision of the run that made the span,
# so a nested ``attest run`` in a step decides the same way (see docs/tracing.md).
ATTEST_KEY = "attest"


class TraceParent(FrozenRecord):
    """A parsed ``traceparent``: ids as integers, ``sampled`` from bit 0 of the flags."""

    trace_id: int
    span_id: int
    flags: int
    version: int

    def __init__(self, trace_id: int, span_id: int, flags: int, version: int = 0) -> None:
        self.__dict__.update(trace_id=trace_id, span_id=span_id, flags=flags, version=version)

    @property
    def sampled(self) -> bool:
        return bool(self.flags & 0x01)

    def header(self) -> str:
        return format_traceparent(self.trace_id, self.span_id, sampled=self.sampled)


def parse_traceparent(value: str | None) -> tuple[TraceParent | None, str | None]:
    """Return ``(traceparent, None)`` or ``(None, why it was ignored)``."""
    if value is None:
        return None, None
    text = value.strip(" \t")
    if not text:
        return None, None
    m = _PARENT_00.match(text)
    if m is None:
        return None, "not version-traceid-parentid-flags in lowercase hex"
    version = int(m.group(1), 16)
    if version == 0xFF:
        return None, "version ff is invalid"
    rest = text[m.end():]
    if version == 0 and rest:
        return None, "version 00 has exactly four fields"
    if version > 0 and rest and not rest.startswith("-"):
        return None, "fields of a future version must be separated by '-'"
    trace_id, span_id = int(m.group(2), 16), int(m.group(3), 16)
    if trace_id == 0:
        return None, "trace-id is all zeros"
    if span_id == 0:
        return None, "parent-id is all zeros"
    return TraceParent(trace_id, span_id, int(m.group(4), 16), version), None


def format_traceparent(trace_id: int, span_id: int, *, sampled: bool) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-{'01' if sampled else '00'}"


def parse_tracestate(value: str | None) -> tuple[list[tuple[str, str]], str | None]:
    """Parse list members in order; the whole header is dropped when any member is invalid."""
    if not value:
        return [], None
    members: list[tuple[str, str]] = []
    seen: set[str] = set()
    for raw in value.split(","):
        item = raw.strip(" \t")
        if not item:
            continue
        key, sep, val = item.partition("=")
        if not sep or not _TS_KEY.fullmatch(key) or not _TS_VALUE.fullmatch(val):
            return [], f"invalid tracestate member {item[:40]!r}"
        if key in seen:
            return [], f"duplicate tracestate key {key!r}"
        seen.add(key)
        members.append((key, val))
    if len(members) > MAX_TRACESTATE_MEMBERS:
        return [], f"more than {MAX_TRACESTATE_MEMBERS} tracestate members"
    return members, None


def format_tracestate(members: list[tuple[str, str]]) -> str:
    return ",".join(f"{k}={v}" for k, v in members)


def with_member(members: list[tuple[str, str]], key: str, value: str) -> list[tuple[str, str]]:
    """W3C: a vendor that updates its entry moves it to the front (and the list stays <= 32)."""
    rest = [(k, v) for k, v in members if k != key]
    return [(key, value), *rest][:MAX_TRACESTATE_MEMBERS]


def ratio_keeps(trace_id: int, rate: float) -> bool:
    """``TraceIdRatioBased`` semantics: compare the low 64 bits of the id with rate * 2^64.

    Deterministic for a trace id, so every process in one trace (a nested ``attest run``)
    reaches the same answer; matches the OpenTelemetry SDK's sampler bound exactly.
    """
    bound = round(rate * (1 << 64))
    return (trace_id & 0xFFFFFFFFFFFFFFFF) < bound


def head_hint(members: list[tuple[str, str]]) -> bool | None:
    """The head decision an outer attest run recorded in ``tracestate`` (``attest=h1``/``h0``)."""
    for key, value in members:
        if key == ATTEST_KEY:
            if value == "h1":
                return True
            if value == "h0":
                return False
    return None
