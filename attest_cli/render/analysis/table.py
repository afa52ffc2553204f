"""``--format table`` (memory): memray's sortable table of allocations at the peak, offline."""

from __future__ import annotations

from attest_cli.analysis.subject import Subject
from attest_cli.render.analysis.flamegraph import memray_html


def render(subject: Subject) -> str:
    from memray.reporters.table import TableReporter

    return memray_html(subject.data, TableReporter)

