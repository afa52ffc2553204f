"""``attest analyze``: render a profile, run report or benchmark result."""

from __future__ import annotations

from pathlib import Path

import typer

from attest_cli.cli.common import app_context

HELP = "Render a CPU profile, memory capture, run report or benchmark result."


def analyze(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="A CPU profile, memory capture, run report "
                                "(.attest/runs/<id>.json) or benchmark result; the kind is "
                                "detected from the content."),
    fmt: str | None = typer.Option(
        None, "--format", "-f",
        help="text (default), html (default for --output *.html), json, speedscope (CPU), "
             "flamegraph|table|stats (memory), chrome-trace (run report), markdown "
             "(benchmark)."),
    output: Path | None = typer.Option(None, "--output", "-o",
                                       help="Write here instead of stdout."),
) -> None:
    from attest_cli.analysis.analyze import analyze as render
    from attest_cli.atomic import write_atomic

    app = app_context(ctx)
    text = render(app.path(file), fmt, output)
    if output is None:
        app.stdout.write(text)
        return
    target = write_atomic(app.path(output), text)
    app.stderr.write(f"wrote {app.display(target)}\n")
