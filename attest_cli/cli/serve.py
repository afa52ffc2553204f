"""``attest serve``: the long-running exporter."""

from __future__ import annotations

import typer

from attest_cli.cli.common import app_context, configure_logging

HELP = "Serve /metrics and health endpoints derived from the run history."


def serve(
    ctx: typer.Context,
    endpoint: str | None = typer.Option(None, "--endpoint", help="HOST:PORT or :PORT "
                                        "(loopback) to listen on; 0.0.0.0:PORT exposes it "
                                        "[default: monitoring.prometheus.endpoint]."),
) -> None:
    from attest_cli.metrics.serve import Exporter

    app = app_context(ctx)
    settings = app.settings(pipeline_doc=app.pipeline_doc())
    configure_logging(app, settings)
    exporter = Exporter(app, settings, endpoint)
    app.stderr.write(f"attest serve: listening on {exporter.url} "
                     f"({', '.join(exporter.paths)}); stop with Ctrl-C\n")
    app.stderr.flush()
    exporter.run_until_signalled()
