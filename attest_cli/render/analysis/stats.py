"""``--format stats`` (memory): the same statistics ``memray stats`` prints."""

from __future__ import annotations

import contextlib
import io
import os

from attest_cli.analysis.subject import Subject


def render(subject: Subject) -> str:
    from memray._memray import compute_statistics
    from memray.reporters.stats import StatsReporter

    stats = compute_statistics(os.fspath(subject.path), report_progress=False, num_largest=10)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):  # memray's reporter prints through rich
        StatsReporter(stats, 10).render()
    return out.getvalue()

