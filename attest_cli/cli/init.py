"""``attest init``: write a sample pipeline and project configuration, and keep attest's
state out of git."""

from __future__ import annotations

import typer

from attest_cli.cli.common import app_context

HELP = ("Write a sample attest.yaml and a commented .attest/config.yaml (refuses to "
        "overwrite), and add .attest/ state to .gitignore.")


def init(ctx: typer.Context, force: bool = typer.Option(False, "--force",
                                                        help="Overwrite existing files.")) -> None:
    from attest_cli.scaffold import write_scaffold

    app = app_context(ctx)
    for path in write_scaffold(app.workdir, force=force):
        app.stdout.write(f"wrote {app.display(path)}\n")
