"""The summary of a finished run as ``attest run`` prints it: one line, a rich table, or
the Markdown of a GitHub Actions job summary.

The progress views (``ui/progress.py``) write these when the run finishes; every name in
them is escaped (:func:`escape_control`), since a step's name may carry control bytes.
"""

from __future__ import annotations

from typing import Any

from attest_cli.engine.run_report import RunReport, StepResult
from attest_cli.escaping import escape_control as esc
from attest_cli.render.figures import duration

SYMBOLS = {"success": "✓", "failure": "✗", "skipped": "↷", "cached": "◆"}


def summary_line(report: RunReport) -> str:
    counts: dict[str, int] = {}
    for s in report.steps:
        counts[s.status] = counts.get(s.status, 0) + 1
    parts = [f"{counts[k]} {k}" for k in ("success", "cached", "failure", "skipped") if k in counts]
    return (f"{esc(report.pipeline)}: {report.status} in "
            f"{duration(report.duration_seconds)} "
            f"— {', '.join(parts)} (run {report.run_id})")


def markdown_summary(report: RunReport) -> str:
    rows = [f"### attest: {esc(report.pipeline)} — {report.status}", "",
            "| step | status | duration | exit | cache |", "|---|---|---:|---:|---|"]
    for s in report.steps:
        cache = "hit" if s.cache_hit else ("miss" if s.cache_key else "")
        exit_code = "" if s.exit_code is None else str(s.exit_code)
        rows.append(f"| {esc(s.name)} | {SYMBOLS[s.status]} {s.status} | "
                    f"{duration(s.wall_seconds)} | {exit_code} | {cache} |")
    rows.append("")
    rows.append(f"Total {duration(report.duration_seconds)}, run `{report.run_id}`.")
    return "\n".join(rows) + "\n\n"


def rich_text(value: str, style: str = "") -> Any:
    """Plain text for rich: never parsed as markup."""
    from rich.text import Text

    return Text(value, style=style)


def _rss(s: StepResult) -> str:
    if not s.max_rss_bytes:
        return ""
    bound = "" if s.max_rss_exact else "≤"
    return f"{bound}{s.max_rss_bytes / 2**20:.1f} MiB"


def summary_table(report: RunReport) -> object:
    from rich.table import Table

    title = (f"{esc(report.pipeline)} — {report.status} in "
             f"{duration(report.duration_seconds)}")
    table = Table(title=rich_text(title), title_justify="left")
    for col, kw in (("step", {}), ("status", {}), ("wall", {"justify": "right"}),
                    ("cpu", {"justify": "right"}), ("peak rss", {"justify": "right"}),
                    ("note", {})):
        table.add_column(col, **kw)  # type: ignore[arg-type]
    for s in report.steps:
        note = s.reason or (f"{s.cache_backend} hit" if s.cache_hit else "")
        table.add_row(rich_text(esc(s.name)), f"{SYMBOLS[s.status]} {s.status}",
                      duration(s.wall_seconds),
                      duration(s.cpu_user_seconds + s.cpu_system_seconds),
                      _rss(s), rich_text(esc(note or "")))
    table.caption = f"run {report.run_id}"
    return table
