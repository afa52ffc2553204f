"""The answer a memray capture gives: peak memory and which code held it at the peak."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Allocator:
    function: str
    file: str
    line: int
    bytes: int  # held at the peak
    allocations: int
    share: float  # of the peak


@dataclass
class MemorySummary:
    peak_bytes: int
    total_allocations: int
    duration_seconds: float
    native_traces: bool
    command_line: str
    top_allocators: list[Allocator]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _allocating_frame(stack: list[tuple[str, str, int]]) -> tuple[str, str, int]:
    """The innermost frame, skipping the import machinery (so an import is charged to the
    module being imported, not to ``<frozen importlib._bootstrap>``)."""
    for function, file, line in stack:
        if not file.startswith("<frozen importlib"):
            return (function, file, line)
    return tuple(stack[0]) if stack else ("<no Python frame>", "", 0)  # type: ignore[return-value]


def summarize(reader: Any, *, top: int = 15) -> MemorySummary:
    """Group the allocations alive at the high-water mark by the Python line that made them."""
    meta = reader.metadata
    held: dict[tuple[str, str, int], list[int]] = defaultdict(lambda: [0, 0])
    for record in reader.get_high_watermark_allocation_records(merge_threads=True):
        key = _allocating_frame(record.stack_trace())
        held[key][0] += record.size
        held[key][1] += record.n_allocations
    peak = int(meta.peak_memory)
    ranked = sorted(held.items(), key=lambda kv: (-kv[1][0], kv[0]))[:top]
    allocators = [Allocator(function=str(f), file=str(file), line=int(line), bytes=size,
                            allocations=count, share=round(size / peak, 4) if peak else 0.0)
                  for (f, file, line), (size, count) in ranked]
    duration = (meta.end_time - meta.start_time).total_seconds()
    return MemorySummary(peak_bytes=peak, total_allocations=int(meta.total_allocations),
                         duration_seconds=round(duration, 6),
                         native_traces=bool(meta.has_native_traces),
                         command_line=str(meta.command_line), top_allocators=allocators)
