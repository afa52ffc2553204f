"""Progress views for ``attest run``: a rich live view, plain lines, GitHub Actions groups.

All of them write to stderr; stdout is kept for machine-readable output.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, TextIO

from attest_cli.engine.events import Event, RunFinished, StepFinished, StepOutput, StepStarted
from attest_cli.engine.report import RunReport, StepResult

SYMBOLS = {"success": "✓", "failure": "✗", "skipped": "↷", "cached": "◆"}
TAIL_LINES = 20


def _fmt_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.2f}s"
    return f"{int(seconds // 60)}m{seconds % 60:04.1f}s"


def _describe(r: StepResult) -> str:
    if r.status == "success":
        return f"{r.name} ({_fmt_duration(r.wall_seconds)})"
    if r.status == "cached":
        return f"{r.name} cached ({r.cache_backend or 'cache'})"
    if r.status == "skipped":
        return f"{r.name} skipped: {r.reason}"
    return f"{r.name} failed: {r.reason} ({_fmt_duration(r.wall_seconds)})"


def _log_tail(r: StepResult, lines: int = TAIL_LINES) -> list[str]:
    if not r.log_file or not Path(r.log_file).is_file():
        return []
    with open(r.log_file, encoding="utf-8", errors="replace") as fh:
        return [line.rstrip("\n") for line in deque(fh, maxlen=lines)]


def summary_line(report: RunReport) -> str:
    counts: dict[str, int] = {}
    for s in report.steps:
        counts[s.status] = counts.get(s.status, 0) + 1
    parts = [f"{counts[k]} {k}" for k in ("success", "cached", "failure", "skipped") if k in counts]
    return (f"{report.pipeline}: {report.status} in {_fmt_duration(report.duration_seconds)} "
            f"— {', '.join(parts)} (run {report.run_id})")


class PlainView:
    """Line-oriented output for pipes and CI logs: every output line prefixed by its step."""

    def __init__(self, stream: TextIO, *, show_output: bool = True, quiet: bool = False) -> None:
        self.stream = stream
        self.show_output = show_output and not quiet
        self.quiet = quiet
        self.width = 0

    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def __call__(self, event: Event) -> None:
        if isinstance(event, StepStarted) and not self.quiet:
            self._write(f"▶ {event.step}: {event.command}")
        elif isinstance(event, StepOutput) and self.show_output:
            self._write(f"[{event.step}] {event.line}")
        elif isinstance(event, StepFinished):
            r = event.result
            if self.quiet and r.status != "failure":
                return
            self._write(f"{SYMBOLS[r.status]} {_describe(r)}")
            if r.status == "failure" and not self.show_output:
                for line in _log_tail(r):
                    self._write(f"  [{r.name}] {line}")
        elif isinstance(event, RunFinished) and not self.quiet:
            self._write(summary_line(event.report))


class GitHubActionsView:
    """Folds each step's output into ``::group::`` blocks, annotates failures with
    ``::error::`` and appends a Markdown summary to ``$GITHUB_STEP_SUMMARY``.

    Parallel steps interleave, so a step's output is buffered and printed as one group when
    the step ends.
    """

    def __init__(self, stream: TextIO, summary_path: str | None) -> None:
        self.stream = stream
        self.summary_path = summary_path
        self.buffers: dict[str, list[str]] = {}

    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def __call__(self, event: Event) -> None:
        if isinstance(event, StepStarted):
            self.buffers[event.step] = []
        elif isinstance(event, StepOutput):
            self.buffers.setdefault(event.step, []).append(event.line)
        elif isinstance(event, StepFinished):
            r = event.result
            lines = self.buffers.pop(r.name, [])
            self._write(f"::group::{SYMBOLS[r.status]} {_describe(r)}")
            for line in lines:
                self._write(line)
            self._write("::endgroup::")
            if r.status == "failure":
                self._write(f"::error title=attest step {r.name} failed::{r.reason}")
        elif isinstance(event, RunFinished):
            self._write(summary_line(event.report))
            if self.summary_path:
                with open(self.summary_path, "a", encoding="utf-8") as fh:
                    fh.write(markdown_summary(event.report))


def markdown_summary(report: RunReport) -> str:
    rows = [f"### attest: {report.pipeline} — {report.status}", "",
            "| step | status | duration | exit | cache |", "|---|---|---:|---:|---|"]
    for s in report.steps:
        cache = "hit" if s.cache_hit else ("miss" if s.cache_key else "")
        exit_code = "" if s.exit_code is None else str(s.exit_code)
        rows.append(f"| {s.name} | {SYMBOLS[s.status]} {s.status} | "
                    f"{_fmt_duration(s.wall_seconds)} | {exit_code} | {cache} |")
    rows.append("")
    rows.append(f"Total {_fmt_duration(report.duration_seconds)}, run `{report.run_id}`.")
    return "\n".join(rows) + "\n\n"


class LiveView:
    """A rich live view: spinners and elapsed time for running steps, results above them,
    and a summary table at the end. Used only on an interactive terminal."""

    def __init__(self, stream: TextIO, *, show_output: bool = False, color: bool = True) -> None:
        from rich.console import Console

        self.console = Console(file=stream, no_color=not color, highlight=False)
        self.show_output = show_output
        self.running: dict[str, tuple[float, str]] = {}
        self.last_line: dict[str, str] = {}
        self.lock = threading.Lock()
        self.live: object | None = None

    def _render(self) -> object:
        from rich.spinner import Spinner
        from rich.table import Table

        table = Table.grid(padding=(0, 1))
        now = time.monotonic()
        with self.lock:
            items = list(self.running.items())
            last = dict(self.last_line)
        for name, (t0, _cmd) in items:
            tail = last.get(name, "")
            table.add_row(Spinner("dots"), f"[bold]{name}[/]", f"{now - t0:5.1f}s",
                          f"[dim]{tail[:80]}[/]")
        return table

    def start(self) -> None:
        from rich.live import Live

        class _Renderable:
            def __init__(self, view: LiveView) -> None:
                self.view = view

            def __rich__(self) -> object:
                return self.view._render()

        renderable: Any = _Renderable(self)
        live = Live(renderable, console=self.console, refresh_per_second=10,
                    transient=True, redirect_stderr=False, redirect_stdout=False)
        live.start()
        self.live = live

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()  # type: ignore[attr-defined]
            self.live = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, StepStarted):
            with self.lock:
                self.running[event.step] = (time.monotonic(), event.command)
        elif isinstance(event, StepOutput):
            with self.lock:
                self.last_line[event.step] = event.line
            if self.show_output:
                self.console.print(f"[dim]\\[{event.step}][/] {event.line}", markup=True,
                                   highlight=False)
        elif isinstance(event, StepFinished):
            r = event.result
            with self.lock:
                self.running.pop(r.name, None)
                self.last_line.pop(r.name, None)
            style = {"success": "green", "failure": "red", "skipped": "yellow",
                     "cached": "cyan"}[r.status]
            self.console.print(f"[{style}]{SYMBOLS[r.status]}[/] {_describe(r)}", markup=True,
                               highlight=False)
            if r.status == "failure" and not self.show_output:
                for line in _log_tail(r):
                    self.console.print(f"  [dim]│[/] {line}", markup=True, highlight=False)
        elif isinstance(event, RunFinished):
            self.stop()
            self.console.print(summary_table(event.report))


def _rss(s: StepResult) -> str:
    if not s.max_rss_bytes:
        return ""
    bound = "" if s.max_rss_exact else "≤"
    return f"{bound}{s.max_rss_bytes / 2**20:.1f} MiB"


def summary_table(report: RunReport) -> object:
    from rich.table import Table

    title = f"{report.pipeline} — {report.status} in {_fmt_duration(report.duration_seconds)}"
    table = Table(title=title, title_justify="left")
    for col, kw in (("step", {}), ("status", {}), ("wall", {"justify": "right"}),
                    ("cpu", {"justify": "right"}), ("peak rss", {"justify": "right"}),
                    ("note", {})):
        table.add_column(col, **kw)  # type: ignore[arg-type]
    for s in report.steps:
        note = s.reason or (f"{s.cache_backend} hit" if s.cache_hit else "")
        table.add_row(s.name, f"{SYMBOLS[s.status]} {s.status}", _fmt_duration(s.wall_seconds),
                      _fmt_duration(s.cpu_user_seconds + s.cpu_system_seconds),
                      _rss(s),
                      note or "")
    table.caption = f"run {report.run_id}"
    return table


def choose_view(stream: TextIO, *, quiet: bool, verbose: bool,
                environ: dict[str, str] | None = None) -> PlainView | LiveView | GitHubActionsView:
    """Live view on an interactive terminal; GitHub groups under Actions; plain otherwise."""
    env = environ if environ is not None else dict(os.environ)
    if env.get("GITHUB_ACTIONS") == "true" and not quiet:
        return GitHubActionsView(stream, env.get("GITHUB_STEP_SUMMARY"))
    interactive = stream.isatty() and not env.get("CI") and env.get("TERM") != "dumb"
    if interactive and not quiet:
        return LiveView(stream, show_output=verbose, color=not env.get("NO_COLOR"))
    return PlainView(stream, show_output=True, quiet=quiet)
