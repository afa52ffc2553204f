"""``attest health``: run the readiness checks once."""

from __future__ import annotations

import sys
from enum import Enum

import typer

from attest_cli.cli.common import app_context, print_json

HELP = "Run the health checks once; exit 0 when healthy, 1 when not."


class Format(str, Enum):
    text = "text"
    json = "json"


def health(
    ctx: typer.Context,
    fmt: Format = typer.Option(Format.text, "--format", "-f", help="text or json."),
) -> None:
    from attest_cli.health.checks import Readiness

    app = app_context(ctx)
    settings = app.settings(pipeline_doc=app.pipeline_doc())
    readiness = Readiness(app, settings)
    try:
        report = readiness.evaluate()
    finally:
        readiness.close()
    if fmt is Format.json:
        print_json(report.to_dict())
    else:
        from attest_cli.escaping import escape_control as esc

        out = [report.status]  # plug-ins name checks and write details: escape both
        names = {name: esc(name) for name in report.checks}
        width = max((len(n) for n in names.values()), default=0)
        for name, r in report.checks.items():
            out.append(f"  {names[name].ljust(width)}  {r.status.ljust(9)}  {esc(r.detail)}  "
                       f"({r.duration_ms:.1f} ms)")
        sys.stdout.write("\n".join(out) + "\n")
    if not report.ok:
        raise typer.Exit(1)
