"""``attest benchmark``: time pipelines and compare results (parse, delegate, render)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from attest_cli.cli.common import app_context, configure_logging

if TYPE_CHECKING:
    from attest_cli.context import AppContext

HELP = "Benchmark the pipeline and compare results with statistics."
app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)


class Cache(StrEnum):
    cold = "cold"
    warm = "warm"


class Format(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


class ListFormat(StrEnum):
    table = "table"
    json = "json"


class Metric(StrEnum):
    wall = "wall"
    cpu = "cpu"
    rss = "rss"


def _color(app: AppContext) -> bool:
    return app.stdout.isatty() and not app.environ.get("NO_COLOR")


def _width(app: AppContext) -> int:
    import shutil

    return shutil.get_terminal_size((120, 24)).columns if app.stdout.isatty() else 120


def _looks(app: AppContext) -> dict[str, Any]:
    """The options a table renderer is made with: colour and width of the terminal."""
    return {"color": _color(app), "width": _width(app)}


def _quiet_logs(app: AppContext) -> None:
    # Every iteration is a full run; its INFO lines would drown the results.
    configure_logging(app, level=None if app.verbose else "warn")


def _warn(app: AppContext, lines: list[str]) -> None:
    for line in lines:
        app.stderr.write(f"attest: warning: {line}\n")


@app.command("pipeline")
def pipeline(
    ctx: typer.Context,
    pipeline_file: Path | None = typer.Option(None, "--pipeline", "-p",
                                              help="Pipeline file [default: attest.yaml]."),
    iterations: int = typer.Option(10, "--iterations", "-n", help="Measured runs."),
    warmup: int = typer.Option(1, "--warmup", "-w", help="Unmeasured runs first (at least 1 "
                               "with --cache warm, to fill the cache)."),
    cache: Cache = typer.Option(Cache.cold, "--cache", help="cold: every step executes "
                                "(--no-cache); warm: cache hits are measured."),
    prepare: str | None = typer.Option(None, "--prepare", help="Shell command run before "
                                       "every iteration, not timed."),
    step: list[str] = typer.Option([], "--step", help="Only this step and its needs "
                                   "(repeatable)."),
    label: str | None = typer.Option(None, "--label", "-l", help="Store under this label "
                                     "[default: git describe --tags --always --dirty]."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Also write the result "
                                       "JSON here."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="What to print on stdout."),
    metric: Metric = typer.Option(Metric.wall, "--metric", help="Metric shown in the table."),
) -> None:
    """Run the pipeline N times and report statistics per step."""
    from attest_cli.atomic import write_atomic
    from attest_cli.bench import store
    from attest_cli.bench.runner import (
        BenchmarkInterrupted,
        BenchmarkSettings,
        Subject,
        benchmark,
    )
    from attest_cli.render.registry import BENCHMARK_RESULT
    from attest_cli.runner.service import execute
    from attest_cli.ui.bench_progress import choose

    app = app_context(ctx)
    _quiet_logs(app)
    settings = BenchmarkSettings(iterations=iterations, warmup=warmup, cache=cache.value,
                                 prepare=prepare, steps=list(step),
                                 pipeline=str(pipeline_file) if pipeline_file else None)
    settings.check()
    chosen = store.check_label(label) if label else store.default_label(app.workdir)
    try:
        result = benchmark([Subject(chosen, app, {"kind": "worktree"})], settings,
                           choose(app.stderr, quiet=app.quiet), execute=execute)[0]
    except BenchmarkInterrupted as exc:
        if exc.partial:  # keep the iterations measured so far
            kept = store.save(app, exc.partial[0])
            if output:
                write_atomic(app.path(output), exc.partial[0].to_json())
            app.stderr.write(f"attest: kept {exc.partial[0].iterations} measured iterations "
                             f"as '{exc.partial[0].label}' ({app.display(kept)})\n")
        raise
    stored = store.save(app, result)
    if output:
        write_atomic(app.path(output), result.to_json())
    app.stdout.write(BENCHMARK_RESULT.render(fmt.value, result, metric=metric.value,
                                             **_looks(app)))
    if fmt is Format.json:
        _warn(app, result.warnings)
    app.stderr.write(f"attest: stored as '{result.label}' ({app.display(stored)})"
                     + (f" and written to {output}" if output else "") + "\n")


@app.command("compare")
def compare(
    ctx: typer.Context,
    baseline: str = typer.Option(..., "--baseline", "-b", help="Result file, stored label "
                                 "or git ref."),
    current: str = typer.Option(".", "--current", "-c", help="Result file, stored label, git "
                                "ref, or '.' for the working tree."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, json or markdown."),
    metric: Metric = typer.Option(Metric.wall, "--metric", help="wall, cpu or rss."),
    fail_on_regression: float | None = typer.Option(
        None, "--fail-on-regression", metavar="PCT", help="Exit 1 when a step or the total "
        "is significantly slower and the CI's lower bound exceeds PCT percent."),
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level of the test."),
    iterations: int = typer.Option(10, "--iterations", "-n", help="Iterations per side when "
                                   "a side is benchmarked now."),
    warmup: int = typer.Option(1, "--warmup", "-w", help="Warm-up runs per benchmarked side."),
    cache: Cache | None = typer.Option(None, "--cache", help="Cache mode for sides benchmarked "
                                       "now [default: the other side's, else cold]."),
    prepare: str | None = typer.Option(None, "--prepare", help="Shell command before every "
                                       "iteration of a benchmarked side."),
    step: list[str] = typer.Option([], "--step", help="Only this step and its needs."),
    pipeline_file: Path | None = typer.Option(None, "--pipeline", "-p",
                                              help="Pipeline file [default: attest.yaml]."),
    fresh: bool = typer.Option(False, "--fresh", help="Benchmark git refs even when a stored "
                               "result has that label."),
) -> None:
    """Compare two results with a significance test, per step."""
    from attest_cli.bench import sides
    from attest_cli.bench.compare import compare as do_compare
    from attest_cli.bench.runner import BenchmarkSettings
    from attest_cli.errors import AttestError, ExitCode, UsageError
    from attest_cli.render.registry import COMPARISON
    from attest_cli.runner.service import execute
    from attest_cli.ui.bench_progress import choose

    app = app_context(ctx)
    _quiet_logs(app)
    if not 0 < alpha < 0.5:
        raise UsageError(f"--alpha {alpha}: must be between 0 and 0.5")
    if fail_on_regression is not None and fail_on_regression < 0:
        raise UsageError("--fail-on-regression must not be negative")
    base = sides.resolve(app, "baseline", baseline, fresh=fresh)
    cur = sides.resolve(app, "current", current, fresh=fresh)
    known = base.result or cur.result
    mode = cache.value if cache else (known.settings.get("cache", "cold") if known else "cold")
    settings = BenchmarkSettings(iterations=iterations, warmup=warmup, cache=mode,
                                 prepare=prepare, steps=list(step),
                                 pipeline=str(pipeline_file) if pipeline_file else None)
    b, c = sides.obtain(app, base, cur, settings, choose(app.stderr, quiet=app.quiet),
                        execute=execute)
    result = do_compare(b, c, metric=metric.value, alpha=alpha, threshold=fail_on_regression)
    result.notes = {"baseline": base.note, "current": cur.note}
    app.stdout.write(COMPARISON.render(fmt.value, result, **_looks(app)))
    if fmt is Format.json:
        _warn(app, result.warnings)
    if result.regressions:
        names = ", ".join(r.name for r in result.regressions)
        raise AttestError(f"performance regression above {fail_on_regression:g}%: {names}",
                          exit_code=ExitCode.FAILURE)


@app.command("list")
def list_results(
    ctx: typer.Context,
    fmt: ListFormat = typer.Option(ListFormat.table, "--format", "-f",
                                   help="table or json."),
) -> None:
    """Stored results (.attest/benchmarks/), newest first."""
    from attest_cli.bench import store
    from attest_cli.render.registry import STORED_RESULTS

    app = app_context(ctx)
    app.stdout.write(STORED_RESULTS.render(fmt.value, store.catalogue(app), **_looks(app)))
