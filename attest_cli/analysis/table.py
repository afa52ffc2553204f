"""``--format table`` (memory): memray's sortable table of allocations at the peak, offline."""

from __future__ import annotations

from attest_cli.analysis.detect import MEMORY
from attest_cli.analysis.flamegraph import memray_html
from attest_cli.analysis.registry import register
from attest_cli.analysis.subject import Subject


def render(subject: Subject) -> str:
    from memray.reporters.table import TableReporter

    return memray_html(subject.data, TableReporter)


register(MEMORY, "table", render)
