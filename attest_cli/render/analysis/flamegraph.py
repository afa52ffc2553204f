"""``--format flamegraph`` (memory): memray's flame graph of the peak, fully offline.

memray's HTML loads d3, jQuery and Bootstrap from a CDN unless ``no_web`` is set (memray >=
1.19), which inlines its vendored copies instead: that is the only form we hand out.
"""

from __future__ import annotations

import io
from typing import Any

from attest_cli.analysis.subject import Subject


def memray_html(reader: Any, reporter_class: Any) -> str:
    """Render one of memray's HTML reporters for the high-water mark, offline."""
    records = reader.get_high_watermark_allocation_records(merge_threads=True)
    reporter = reporter_class.from_snapshot(
        records, memory_records=tuple(reader.get_memory_snapshots()),
        native_traces=reader.metadata.has_native_traces)
    out = io.StringIO()
    reporter.render(outfile=out, metadata=reader.metadata, show_memory_leaks=False,
                    merge_threads=True, inverted=False, no_web=True)
    return out.getvalue()


def render(subject: Subject) -> str:
    from memray.reporters.flamegraph import FlameGraphReporter

    return memray_html(subject.data, FlameGraphReporter)

