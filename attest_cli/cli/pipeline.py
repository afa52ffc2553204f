"""``attest pipeline``: validate the file and draw its DAG."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from attest_cli.cli.common import app_context

HELP = "Validate attest.yaml and draw its DAG with the critical path."
app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)


class GraphFormat(str, Enum):
    ascii = "ascii"
    mermaid = "mermaid"
    dot = "dot"
    json = "json"


@app.command("validate")
def validate(ctx: typer.Context,
             pipeline: Path | None = typer.Option(None, "--pipeline", "-p")) -> None:
    """Check the pipeline and its configuration sections; exit 2 on the first problem.

    Warns about keys of its sections that a higher layer overrides with another value."""
    from attest_cli.config.shadowing import shadow_warnings
    from attest_cli.pipeline.confine import check_state_outputs
    from attest_cli.pipeline.loader import load_pipeline

    app_ = app_context(ctx)
    doc = app_.pipeline_doc(pipeline, required=True)
    assert doc is not None
    p = load_pipeline(app_.pipeline_path(pipeline), doc=doc)
    settings = app_.settings(pipeline_doc=doc)
    check_state_outputs(doc, p, settings, app_.state_dir)
    for line in shadow_warnings(settings, app_.display):
        app_.stderr.write(f"attest: warning: {line}\n")
    app_.stdout.write(f"{doc.path}: ok ({len(p.steps)} steps, pipeline '{p.name}')\n")


@app.command("show")
def show(ctx: typer.Context,
         pipeline: Path | None = typer.Option(None, "--pipeline", "-p"),
         fmt: GraphFormat = typer.Option(GraphFormat.ascii, "--format", "-f"),
         durations: bool = typer.Option(True, "--durations/--no-durations",
                                        help="Weigh the critical path by each step's "
                                             "duration in the last run that executed it "
                                             "(cached runs are skipped).")) -> None:
    """Draw the DAG (ascii, mermaid, dot or json), marking the critical path."""
    from attest_cli.pipeline.loader import load_pipeline
    from attest_cli.render.pipeline_graph import Drawing
    from attest_cli.render.registry import PIPELINE_GRAPH
    from attest_cli.runner.records import last_durations

    app_ = app_context(ctx)
    doc = app_.pipeline_doc(pipeline, required=True)
    p = load_pipeline(app_.pipeline_path(pipeline), doc=doc)
    weights = last_durations(app_.state_dir / "runs", p.name, p.steps) if durations else None
    app_.stdout.write(PIPELINE_GRAPH.render(fmt.value, Drawing(p, weights or None)))
