"""Issue 14: ``attest cache stats`` takes its hit and miss counts from the run history's
totals, never by parsing every stored run report."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import attest, write_pipeline


def test_stats_counts_come_from_the_history_not_the_run_reports(project: Path) -> None:
    write_pipeline(project, """
        steps:
          a: {run: 'echo a > a.txt', outputs: [a.txt]}
          b: {run: 'echo b > b.txt', outputs: [b.txt]}
    """)
    for _ in range(3):
        assert attest("run", cwd=project).returncode == 0
    # the reports become unreadable as JSON: counting from them would find nothing
    for report in (project / ".attest" / "runs").glob("*.json"):
        report.write_text("{ not json")
    proc = attest("cache", "stats", "--format", "json", cwd=project)
    assert proc.returncode == 0, proc.stderr
    (local,) = json.loads(proc.stdout)["backends"]
    assert (local["hits"], local["misses"], local["entries"]) == (4, 2, 2)
    assert local["hit_rate"] == round(4 / 6, 4)


def test_stats_without_any_history_counts_nothing(project: Path) -> None:
    proc = attest("cache", "stats", "--format", "json", cwd=project)
    assert proc.returncode == 0, proc.stderr
    (local,) = json.loads(proc.stdout)["backends"]
    assert (local["hits"], local["misses"], local["hit_rate"]) == (0, 0, None)
    assert not (project / ".attest" / "history.db").exists()  # stats creates no history
