"""Text (rich table), Markdown and JSON renderings of results and comparisons.

Renderers return strings so that the CLI, ``attest analyze`` and a CI step that posts a
pull-request comment all get the same text. rich is imported only when a table is drawn.
The classes at the end are the registry's renderers (options given when made: the metric,
colour, width); the functions are what they call.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from attest_cli.bench.compare import (
    CHANGE_NAME,
    CI_NAME,
    FASTER,
    SLOWER,
    TEST_NAME,
    Comparison,
    Row,
)
from attest_cli.bench.result import METRICS, TOTAL, BenchmarkResult
from attest_cli.bench.stats import Summary


def fmt_value(value: float, metric: str) -> str:
    if metric == "rss":
        return f"{value / 2**20:.1f} MiB"
    if value >= 60:
        return f"{int(value // 60)}m{value % 60:04.1f}s"
    if value >= 1:
        return f"{value:.3f} s"
    if value >= 0.001:
        return f"{value * 1000:.1f} ms"
    return f"{value * 1e6:.0f} µs"


def fmt_pct(value: float | None) -> str:
    if value is None:
        return "—"
    if math.isinf(value):
        return "∞"
    return f"{value:+.1f}%"


def _console(width: int, color: bool) -> Any:
    from rich.console import Console

    return Console(file=io.StringIO(), width=width, force_terminal=color,
                   color_system="standard" if color else None, highlight=False,
                   soft_wrap=False)


# -- a single result ----------------------------------------------------------------------

def _result_rows(result: BenchmarkResult, metric: str) -> list[tuple[str, Summary]]:
    return [(TOTAL, result.summary(TOTAL, metric))] + [
        (n, result.summary(n, metric)) for n in result.step_names]


def describe_result(result: BenchmarkResult) -> str:
    env = result.environment
    git = env.get("git") or {}
    commit = f", git {git.get('describe') or str(git.get('commit', ''))[:12]}" if git else ""
    return (f"{result.label}: pipeline '{result.pipeline.get('name')}', "
            f"{result.iterations} iterations after {result.settings.get('warmup', 0)} warm-up, "
            f"{result.settings.get('cache')} cache; {env.get('hostname')}, "
            f"{env.get('cpu_count')} CPUs, Python {env.get('python')}{commit}")


def result_text(result: BenchmarkResult, *, metric: str = "wall", color: bool = False,
                width: int = 110) -> str:
    from rich.table import Table

    console = _console(width, color)
    console.print(describe_result(result))
    table = Table(title=f"{metric} ({'peak RSS' if metric == 'rss' else 'per iteration'})",
                  title_justify="left")
    for col in ("step", "mean ± σ", "median", "min", "max", "p95", "MAD", "outliers"):
        table.add_column(col, justify="left" if col == "step" else "right")
    for name, s in _result_rows(result, metric):
        f = lambda v: fmt_value(v, metric)  # noqa: E731
        table.add_row(f"[bold]{name}[/]" if name == TOTAL else name,
                      f"{f(s.mean)} ± {f(s.stdev)}", f(s.median), f(s.min), f(s.max),
                      f(s.p95), f(s.mad), str(len(s.outliers)))
    console.print(table)
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    return str(console.file.getvalue())


def result_markdown(result: BenchmarkResult, *, metric: str = "wall") -> str:
    lines = [f"**{describe_result(result)}**", "",
             "| step | mean ± σ | median | min | max | p95 | MAD | outliers |",
             "|:--|--:|--:|--:|--:|--:|--:|--:|"]
    for name, s in _result_rows(result, metric):
        f = lambda v: fmt_value(v, metric)  # noqa: E731
        shown = f"**{name}**" if name == TOTAL else f"`{name}`"
        lines.append(f"| {shown} | {f(s.mean)} ± {f(s.stdev)} | {f(s.median)} | {f(s.min)} | "
                     f"{f(s.max)} | {f(s.p95)} | {f(s.mad)} | {len(s.outliers)} |")
    lines += [f"> warning: {w}" for w in result.warnings]
    return "\n".join(lines) + "\n"


def result_json(result: BenchmarkResult) -> str:
    return result.to_json()


# -- a comparison -------------------------------------------------------------------------

def _verdict_style(row: Row, comparison: Comparison) -> str:
    if row.verdict == SLOWER:
        gated = row in comparison.regressions
        return f"[red]{row.verdict}{' ✗ gate' if gated else ''}[/]"
    if row.verdict == FASTER:
        return f"[green]{row.verdict}[/]"
    return row.verdict


def _cells(row: Row, metric: str, newline: str = "\n") -> tuple[str, str, str, str, str]:
    def side(s: Summary | None) -> str:
        if s is None:
            return "—"
        return (f"{fmt_value(s.mean, metric)} ± {fmt_value(s.stdev, metric)}{newline}"
                f"median {fmt_value(s.median, metric)}")
    ci = "—" if row.change is None else f"[{fmt_pct(row.change.ci_low)}, " \
                                          f"{fmt_pct(row.change.ci_high)}]"
    p = "—" if row.test is None else f"{row.test.p_value:.3g}"
    return side(row.baseline), side(row.current), fmt_pct(row.change.pct if row.change
                                                          else None), ci, p


def _preamble(comparison: Comparison) -> list[str]:
    c = comparison
    lines = []
    for role, result in (("baseline", c.baseline), ("current", c.current)):
        how = c.notes.get(role)
        lines.append(f"{role}: {describe_result(result)}" + (f" [{how}]" if how else ""))
    lines.append(f"metric: {c.metric}; test: {TEST_NAME} on the raw samples, alpha {c.alpha}")
    lines.append(f"change: {CHANGE_NAME}; CI: {100 * (1 - c.alpha):.0f}% {CI_NAME}")
    return lines


def _gate_line(comparison: Comparison) -> str | None:
    if comparison.threshold is None:
        return None
    bad = comparison.regressions
    if bad:
        return (f"regression gate FAILED: {', '.join(r.name for r in bad)} significantly "
                f"slower by more than {comparison.threshold:g}% (CI lower bound)")
    return f"regression gate passed (threshold {comparison.threshold:g}%)"


def comparison_text(comparison: Comparison, *, color: bool = False, width: int = 120) -> str:
    from rich.markup import escape
    from rich.table import Table

    console = _console(width, color)
    for line in _preamble(comparison):
        console.print(escape(line))
    for w in comparison.warnings:
        console.print(f"[bold yellow]WARNING:[/] {escape(w)}")
    table = Table()
    for col in ("step", "baseline mean ± σ", "current mean ± σ", "change",
                f"{100 * (1 - comparison.alpha):.0f}% CI", "p-value", "verdict"):
        table.add_column(col, justify="left" if col in ("step", "verdict") else "right")
    for row in comparison.rows:
        cells = _cells(row, comparison.metric)
        name = f"[bold]{row.name}[/]" if row.kind == "total" else escape(row.name)
        table.add_row(name, *cells, _verdict_style(row, comparison))
    console.print(table)
    gate = _gate_line(comparison)
    if gate:
        console.print(f"[bold]{gate}[/]")
    return str(console.file.getvalue())


def comparison_markdown(comparison: Comparison) -> str:
    c = comparison
    level = f"{100 * (1 - c.alpha):.0f}% CI"
    lines = [f"### Benchmark: `{c.current.label}` vs `{c.baseline.label}` ({c.metric})", ""]
    lines += [f"- {line}" for line in _preamble(c)]
    lines += [f"- ⚠️ **{w}**" for w in c.warnings]
    lines += ["", f"| step | baseline | current | change | {level} | p-value | verdict |",
              "|:--|--:|--:|--:|--:|--:|:--|"]
    for row in c.rows:
        base, cur, change, ci, p = _cells(row, c.metric, newline="<br>")
        verdict = row.verdict
        if row.verdict == SLOWER:
            verdict = f"🔴 {verdict}" + (" (gate)" if row in c.regressions else "")
        elif row.verdict == FASTER:
            verdict = f"🟢 {verdict}"
        name = f"**{row.name}**" if row.kind == "total" else f"`{row.name}`"
        lines.append(f"| {name} | {base} | {cur} | {change} | {ci} | {p} | {verdict} |")
    gate = _gate_line(c)
    if gate:
        lines += ["", f"**{gate}**"]
    return "\n".join(lines) + "\n"


def comparison_json(comparison: Comparison) -> str:
    return json.dumps(comparison.to_dict(), indent=2) + "\n"


StoredResults = list[dict[str, Any]]  # rows of bench.store.catalogue


def stored_json(rows: StoredResults) -> str:
    return json.dumps(rows, indent=2) + "\n"


def stored_table(rows: StoredResults, *, color: bool = False, width: int = 120) -> str:
    if not rows:
        return "no stored benchmark results (attest benchmark pipeline stores one)\n"
    from rich.table import Table

    table = Table()
    for col in ("label", "created", "pipeline", "iterations", "cache", "total mean", "commit"):
        table.add_column(col)
    for row in rows:
        if "error" in row:
            table.add_row(row["label"], f"unreadable: {row['error']}", "", "", "", "", "")
            continue
        table.add_row(row["label"], row["created_at"], str(row["pipeline"]),
                      str(row["iterations"]), str(row["cache"]),
                      fmt_value(row["total_mean_seconds"], "wall"),
                      str(row["commit"] or "")[:12])
    console = _console(width, color)
    console.print(table)
    return str(console.file.getvalue())


# -- the registry's renderers (attest_cli.render.registry) --------------------------------

@dataclass(frozen=True)
class _Looks:
    """The options every benchmark renderer is made with (each uses what applies)."""

    metric: str = "wall"
    color: bool = False
    width: int = 110
    format: ClassVar[str] = "table"
    extension: ClassVar[str] = "txt"


class ResultText(_Looks):
    """``--format table`` of a result: one metric's statistics as a rich table."""

    def render(self, value: BenchmarkResult) -> str:
        return result_text(value, metric=self.metric, color=self.color, width=self.width)


class ResultMarkdown(_Looks):
    """``--format markdown`` of a result: one metric, for a pull-request comment."""

    format: ClassVar[str] = "markdown"
    extension: ClassVar[str] = "md"

    def render(self, value: BenchmarkResult) -> str:
        return result_markdown(value, metric=self.metric)


class ComparisonText(_Looks):
    """``--format table`` of a comparison (the metric is the comparison's own)."""

    def render(self, value: Comparison) -> str:
        return comparison_text(value, color=self.color, width=self.width)


class StoredTable(_Looks):
    """``attest benchmark list``: the stored results as a rich table."""

    def render(self, value: StoredResults) -> str:
        return stored_table(value, color=self.color, width=self.width)


__all__ = ["METRICS", "ComparisonText", "ResultMarkdown", "ResultText", "StoredTable",
           "comparison_json", "comparison_markdown", "comparison_text", "result_json",
           "result_markdown", "result_text", "stored_json", "stored_table"]
