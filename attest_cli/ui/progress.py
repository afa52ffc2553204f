"""Progress views for ``attest run``: a rich live view, plain lines, GitHub Actions groups.

The live view and plain lines write to stderr (stdout is kept for machine-readable output);
the GitHub Actions view writes to stdout, where the runner reads workflow commands
(``::group::``, ``::error::``). Every name they print (steps, pipelines, reasons) goes
through :func:`escape_control`, and a step's output through :func:`filter_output` (colours
kept, cursor/erase/title sequences removed) unless ``--raw-output`` asked for the bytes as
the step wrote them.

A step answered by the cache is one line (``◆ build cached (local)``) in every view: its
replayed output is written to the step's log file, not to the console, so a CI log shows
what ran.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, TextIO

from attest_cli.engine.events import (
    CacheChecked,
    Event,
    RunFinished,
    RunStarted,
    StepFinished,
    StepOutput,
    StepStarted,
)
from attest_cli.engine.run_report import StepResult
from attest_cli.escaping import escape_control as esc
from attest_cli.escaping import filter_output
from attest_cli.render.figures import duration
from attest_cli.render.run_summary import (
    SYMBOLS,
    markdown_summary,
    rich_text,
    summary_line,
    summary_table,
)
from attest_cli.ui import github

TAIL_LINES = 20
FLUSH_SECONDS = 0.05  # PlainView: the longest a cached step's line is held


def _describe(r: StepResult) -> str:
    name = esc(r.name)
    if r.status == "success":
        return f"{name} ({duration(r.wall_seconds)}{_where(r)})"
    if r.status == "cached":
        return f"{name} cached ({esc(r.cache_backend or 'cache')})"
    if r.status == "skipped":
        return f"{name} skipped: {esc(r.reason)}"
    return f"{name} failed: {esc(r.reason)} ({duration(r.wall_seconds)}{_where(r)})"


def _where(r: StepResult) -> str:
    """`` on WORKER`` for a step a remote worker ran (the name is the server's: escaped)."""
    worker = (r.remote or {}).get("worker")
    return f" on {esc(str(worker))}" if worker else ""


class OutputFilter:
    """A step's output line as the terminal should get it (see :mod:`attest_cli.escaping`)."""

    def __init__(self, *, colour: bool = True, raw: bool = False) -> None:
        self.colour = colour
        self.raw = raw

    def __call__(self, line: str) -> str:
        return line if self.raw else filter_output(line, colour=self.colour)


def _log_tail(r: StepResult, lines: int = TAIL_LINES) -> list[str]:
    if not r.log_file or not Path(r.log_file).is_file():
        return []
    with open(r.log_file, encoding="utf-8", errors="replace") as fh:
        return [line.rstrip("\n") for line in deque(fh, maxlen=lines)]


class CacheReplays:
    """Which steps the cache answered, so a view can leave their replayed output out.

    A step whose ``StepStarted`` says the cache is consulted is *pending* until its
    ``CacheChecked``: a hit makes it a replay (its ``StepOutput`` lines are the stored log),
    a miss makes it a step that runs. Events arrive one at a time (the bus serializes them).
    """

    def __init__(self) -> None:
        self.pending: dict[str, StepStarted] = {}
        self.replays: set[str] = set()

    def started(self, event: StepStarted) -> bool:
        """False while the lookup is pending (the start is announced later, if at all)."""
        if event.lookup:
            self.pending[event.step] = event
            return False
        return True

    def checked(self, event: CacheChecked) -> StepStarted | None:
        """The pending start to announce now (a miss), or None (a hit, or not pending)."""
        started = self.pending.pop(event.step, None)
        if event.hit:
            self.replays.add(event.step)
            return None
        return started

    def release(self, step: str) -> StepStarted | None:
        """Output or the end of a step whose lookup never reported (it failed): its start."""
        return self.pending.pop(step, None)

    def replayed(self, step: str) -> bool:
        return step in self.replays

    def finished(self, step: str) -> None:
        self.pending.pop(step, None)
        self.replays.discard(step)


class PlainView:
    """Line-oriented output for pipes and CI logs: every output line prefixed by its step,
    a cached step as one line.

    A line is written at once while any step is in flight (started, not yet finished), and
    so is every start, failure, finished-step and summary line. Only the lines of cached
    steps written while nothing else is in flight (a row of up-to-date replays) are held,
    and written together within :data:`FLUSH_SECONDS` (a timer sees to it): written one
    line each to a pipe, as in CI, 5,000 such lines were ~120 ms of a no-op run (a write
    and a wake-up of the reader per line). A log line written meanwhile (straight to
    stderr) can therefore come before lines of such a row.
    """

    observed_events: tuple[type[Event], ...] = (StepStarted, CacheChecked, StepOutput,
                                                StepFinished, RunFinished)

    def __init__(self, stream: TextIO, *, show_output: bool = True, quiet: bool = False,
                 output: OutputFilter | None = None) -> None:
        self.stream = stream
        self.show_output = show_output and not quiet
        self.quiet = quiet
        if quiet:  # failures and the end only: no start, output or cached line to track
            self.observed_events = (StepFinished, RunFinished)
        self.width = 0
        self.output = output or OutputFilter()
        self.cache = CacheReplays()
        self._in_flight: set[str] = set()
        self._pending: list[str] = []  # held lines (sys.stderr has no buffer of its own)
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()  # the timer's thread flushes too

    def _write(self, text: str, *, hold: bool = False) -> None:
        with self._lock:
            self._pending.append(text + "\n")
            if not hold or self._in_flight:
                self._flush()
            elif self._timer is None:
                self._timer = threading.Timer(FLUSH_SECONDS, self._flush_held)
                self._timer.daemon = True
                self._timer.start()

    def _flush_held(self) -> None:
        with self._lock:
            self._timer = None
            self._flush()

    def close(self) -> None:
        """Write what is held (a run that ended without its RunFinished: an error)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self.stream.write("".join(self._pending))
            self._pending.clear()
        self.stream.flush()

    def _started(self, event: StepStarted | None) -> None:
        if event is not None and not self.quiet:
            self._write(f"▶ {esc(event.step)}: {esc(event.command)}")

    def __call__(self, event: Event) -> None:
        if isinstance(event, StepStarted):
            self._in_flight.add(event.step)
            if self.cache.started(event):
                self._started(event)
        elif isinstance(event, CacheChecked):
            self._started(self.cache.checked(event))
        elif isinstance(event, StepOutput):
            if self.cache.replayed(event.step):
                return
            self._started(self.cache.release(event.step))
            if self.show_output:
                self._write(f"[{esc(event.step)}] {self.output(event.line)}")
        elif isinstance(event, StepFinished):
            r = event.result
            self._in_flight.discard(r.name)
            if r.status != "cached":
                self._started(self.cache.release(r.name))
            self.cache.finished(r.name)
            if self.quiet and r.status != "failure":
                return
            self._write(f"{SYMBOLS[r.status]} {_describe(r)}", hold=r.status == "cached")
            if r.status == "failure" and not self.show_output:
                for line in _log_tail(r):
                    self._write(f"  [{esc(r.name)}] {self.output(line)}")
        elif isinstance(event, RunFinished):
            with self._lock:
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
                if not self.quiet:
                    self._pending.append(summary_line(event.report) + "\n")
                self._flush()


class GitHubActionsView:
    """Folds each step's output into ``::group::`` blocks, annotates failures with
    ``::error file=F,line=N::`` (the pipeline file and the step's line) and appends a
    Markdown summary to ``$GITHUB_STEP_SUMMARY``. Written to stdout, where the runner reads
    workflow commands.

    Parallel steps interleave, so a step's output is buffered and printed as one group when
    the step ends. A cached step is one line, without a group: its replayed output stays in
    its log file.
    """

    def __init__(self, stream: TextIO, summary_path: str | None,
                 output: OutputFilter | None = None,
                 environ: dict[str, str] | None = None) -> None:
        self.stream = stream
        self.summary_path = summary_path
        self.buffers: dict[str, list[str]] = {}
        self.output = output or OutputFilter()
        self.environ = environ if environ is not None else {}
        self.cache = CacheReplays()
        self.file: str | None = None
        self.lines: dict[str, int | None] = {}

    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.file = github.repo_path(event.pipeline.path, self.environ,
                                         default=event.report.pipeline_file)
            self.lines = {name: s.line for name, s in event.pipeline.steps.items()}
        elif isinstance(event, StepStarted):
            self.cache.started(event)
            self.buffers[event.step] = []
        elif isinstance(event, CacheChecked):
            self.cache.checked(event)
        elif isinstance(event, StepOutput):
            if not self.cache.replayed(event.step):
                self.buffers.setdefault(event.step, []).append(event.line)
        elif isinstance(event, StepFinished):
            r = event.result
            lines = self.buffers.pop(r.name, [])
            self.cache.finished(r.name)
            if r.status == "cached":
                self._write(f"{SYMBOLS[r.status]} {_describe(r)}")
                return
            self._write(f"::group::{SYMBOLS[r.status]} {_describe(r)}")
            for line in lines:
                self._write(self.output(line))
            self._write("::endgroup::")
            if r.status == "failure":
                self._write(github.command("error", f"step {r.name} failed: {r.reason}",
                                           file=self.file, line=self.lines.get(r.name)))
        elif isinstance(event, RunFinished):
            self._write(summary_line(event.report))
            if self.summary_path:
                with open(self.summary_path, "a", encoding="utf-8") as fh:
                    fh.write(markdown_summary(event.report))


class LiveView:
    """A rich live view: spinners and elapsed time for running steps, results above them,
    and a summary table at the end. Used only on an interactive terminal."""

    def __init__(self, stream: TextIO, *, show_output: bool = False, color: bool = True) -> None:
        from rich.console import Console

        self.console = Console(file=stream, no_color=not color, highlight=False)
        self.show_output = show_output
        self.output = OutputFilter(colour=color)
        self.running: dict[str, tuple[float, str]] = {}
        self.last_line: dict[str, str] = {}
        self.cache = CacheReplays()
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
            tail = filter_output(last.get(name, ""), colour=False)
            table.add_row(Spinner("dots"), rich_text(esc(name), "bold"), f"{now - t0:5.1f}s",
                          rich_text(tail[:80], "dim"))
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
            self.cache.started(event)
            with self.lock:
                self.running[event.step] = (time.monotonic(), event.command)
        elif isinstance(event, CacheChecked):
            self.cache.checked(event)
        elif isinstance(event, StepOutput):
            if self.cache.replayed(event.step):
                return
            with self.lock:
                self.last_line[event.step] = event.line
            if self.show_output:
                self._print_output(event.step, event.line)
        elif isinstance(event, StepFinished):
            r = event.result
            self.cache.finished(r.name)
            with self.lock:
                self.running.pop(r.name, None)
                self.last_line.pop(r.name, None)
            style = {"success": "green", "failure": "red", "skipped": "yellow",
                     "cached": "cyan"}[r.status]
            self.console.print(rich_text(SYMBOLS[r.status], style), rich_text(_describe(r)))
            if r.status == "failure" and not self.show_output:
                for line in _log_tail(r):
                    self._print_output(None, line)
        elif isinstance(event, RunFinished):
            self.stop()
            self.console.print(summary_table(event.report))

    def _print_output(self, step: str | None, line: str) -> None:
        """One output line, its own colours rendered by rich and nothing else let through
        (``Text`` objects: a ``[bold]`` or ``[/]`` in the output is text, not markup)."""
        from rich.text import Text

        prefix = rich_text(f"[{esc(step)}] " if step is not None else "  │ ", "dim")
        self.console.print(Text.assemble(prefix, Text.from_ansi(self.output(line))))


def choose_view(stream: TextIO, *, quiet: bool, verbose: bool,
                environ: dict[str, str] | None = None, raw_output: bool = False,
                ci_stream: TextIO | None = None) -> PlainView | LiveView | GitHubActionsView:
    """Live view on an interactive terminal; GitHub groups under Actions (on ``ci_stream``,
    the command's stdout); plain otherwise.

    A step's colours are kept unless ``NO_COLOR`` is set or ``TERM`` is ``dumb``. With
    ``raw_output`` the step's bytes pass untouched, and a terminal gets plain lines when the
    output is shown (``-v``): a live view redraws its region with the very cursor sequences
    raw output may contain, so the two cannot share a screen.
    """
    env = environ if environ is not None else dict(os.environ)
    colour = not env.get("NO_COLOR") and env.get("TERM") != "dumb"
    output = OutputFilter(colour=colour, raw=raw_output)
    if github.active(env) and not quiet:
        return GitHubActionsView(ci_stream or stream, env.get("GITHUB_STEP_SUMMARY"), output,
                                 environ=env)
    interactive = stream.isatty() and not env.get("CI") and env.get("TERM") != "dumb"
    if interactive and not quiet and not (raw_output and verbose):
        return LiveView(stream, show_output=verbose, color=not env.get("NO_COLOR"))
    return PlainView(stream, show_output=True, quiet=quiet, output=output)
