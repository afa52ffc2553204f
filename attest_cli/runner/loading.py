"""What a run is about to run: the pipeline, the settings, the selected steps in order.

Separate from the service so that commands which only need to know the pipeline (``attest
cache explain``, ``attest benchmark``) can load it the way ``attest run`` does without
importing the run service.
"""

from __future__ import annotations

from attest_cli.config.layers import Settings
from attest_cli.config.schema import suggest
from attest_cli.context import AppContext
from attest_cli.errors import UsageError
from attest_cli.pipeline.confine import check_state_outputs
from attest_cli.pipeline.graph import topological_order, with_needs
from attest_cli.pipeline.loader import load_pipeline, prepared_form
from attest_cli.pipeline.model import Pipeline
from attest_cli.redaction import settings_credentials
from attest_cli.runner.features import RunOptions
from attest_cli.yamlcache import settle, settle_all

Loaded = tuple[Pipeline, Settings, list[str]]


def load(ctx: AppContext, options: RunOptions) -> Loaded:
    """Load the pipeline and settings, and resolve the steps to run, in order."""
    doc = ctx.pipeline_doc(options.pipeline, required=True, reuse_parse=True)
    assert doc is not None
    pipeline = load_pipeline(ctx.pipeline_path(options.pipeline), doc=doc)
    settings = ctx.settings(pipeline_doc=doc, flags={"parallel": options.parallel},
                            reuse_parse=True)
    # the parses are kept only without secrets in them, and not by a dry run
    secrets = run_secrets(ctx, pipeline, settings)
    # a kept parse already holds the prepared form (building it again: 20 ms a 5,000 steps)
    prepared = prepared_form(pipeline, doc) if doc.prepared is None else None
    settle(doc, secrets, write=not options.dry_run, prepared=prepared)
    settle_all(secrets, write=not options.dry_run)  # the configuration files
    check_state_outputs(doc, pipeline, settings, ctx.state_dir)
    order = topological_order(pipeline)
    if options.steps:
        for name in options.steps:
            if name not in pipeline.steps:
                raise UsageError(f"--step {name}: no such step in {doc.path}"
                                 f"{suggest(name, pipeline.steps)}")
        chosen = with_needs(pipeline, options.steps)
        order = [n for n in order if n in chosen]
    return pipeline, settings, order


def run_secrets(ctx: AppContext, pipeline: Pipeline, settings: Settings) -> list[str]:
    """Every secret value the run knows, to be masked wherever it would appear: the
    values of the variables steps list under ``secrets``, and the credentials in the
    settings and the environment."""
    merged = {**ctx.environ, **pipeline.env}
    for step in pipeline.steps.values():
        merged.update(step.env)
    return [*(merged[n] for n in pipeline.secret_names if merged.get(n)),
            *settings_credentials(settings.values, ctx.environ)]
