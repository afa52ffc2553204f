"""``attest config``: read and write the layered configuration (SPEC §4)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from attest_cli.cli.common import app_context

if TYPE_CHECKING:
    from attest_cli.config.layers import Settings

HELP = "Get, set and inspect the layered configuration."
app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)


def _settings(ctx: typer.Context) -> Settings:
    app_ = app_context(ctx)
    return app_.settings(pipeline_doc=app_.pipeline_doc())


@app.command("get")
def get(ctx: typer.Context, key: str = typer.Argument(..., help="Dotted key, e.g. cache.dir.")
        ) -> None:
    """Print the effective value of KEY."""
    from attest_cli.config.schema import KEYS, lookup
    from attest_cli.render.config import display

    spec = lookup(key)
    value = _settings(ctx).get(key)
    app_context(ctx).stdout.write(("<set>" if spec.secret and value else display(value)) + "\n"
                     if key in KEYS else "")


@app.command("set")
def set_(ctx: typer.Context, key: str = typer.Argument(...), value: str = typer.Argument(...),
         global_: bool = typer.Option(False, "--global", help="Write the user file instead.")
         ) -> None:
    """Validate VALUE for KEY and write it to the project (or user) file.

    A secret key (headers, tokens) is never written to the project file, which is
    committed with the code: --global writes it to the user file, readable by you only."""
    from attest_cli.config.layers import write_key
    from attest_cli.config.schema import env_name, lookup
    from attest_cli.errors import UsageError
    from attest_cli.render.config import display

    app_ = app_context(ctx)
    secret = lookup(key).secret
    if secret and not global_:
        raise UsageError(f"{key} holds a secret and the project file is committed with the "
                         f"code: use --global (the user file, mode 0600) or set "
                         f"{env_name(key)} in the environment")
    path = app_.sources().user_file if global_ else app_.sources().project_file
    coerced = write_key(path, key, value, private=secret)
    shown = "<set>" if secret else display(coerced)  # never echo a secret to a terminal or log
    app_.stderr.write(f"{key} = {shown} ({path})\n")


@app.command("unset")
def unset(ctx: typer.Context, key: str = typer.Argument(...),
          global_: bool = typer.Option(False, "--global")) -> None:
    """Remove KEY from the project (or user) file."""
    from attest_cli.config.layers import write_key

    app_ = app_context(ctx)
    path = app_.sources().user_file if global_ else app_.sources().project_file
    write_key(path, key, None)
    app_.stderr.write(f"{key} unset ({path})\n")


@app.command("list")
def list_(ctx: typer.Context,
          fmt: str = typer.Option("table", "--format", "-f", help="table or json")) -> None:
    """Every key with its type, default and meaning."""
    from attest_cli.config.schema import KEYS
    from attest_cli.render.registry import CONFIG_KEYS

    text = CONFIG_KEYS.render("json" if fmt == "json" else "table", list(KEYS.values()))
    app_context(ctx).stdout.write(text)


@app.command("show")
def show(ctx: typer.Context, origin: bool = typer.Option(False, "--origin",
                                                         help="Say which layer set each value."),
         fmt: str = typer.Option("text", "--format", "-f", help="text or json")) -> None:
    """The effective configuration."""
    from attest_cli.render.config import ShownSettings
    from attest_cli.render.registry import CONFIG_SETTINGS

    shown = ShownSettings(_settings(ctx), origin=origin)
    app_context(ctx).stdout.write(CONFIG_SETTINGS.render("json" if fmt == "json" else "text",
                                                         shown))


@app.command("path")
def path(ctx: typer.Context) -> None:
    """The files each layer reads, and whether they exist."""
    app_ = app_context(ctx)
    src = app_.sources()
    rows = [("user", src.user_file), ("pipeline", app_.pipeline_path()),
            ("project", src.project_file)]
    explicit = src.explicit or (app_.environ.get("ATTEST_CONFIG") or None)
    if explicit:
        rows.append(("file", app_.path(explicit)))
    for name, p in rows:
        state = "exists" if p.exists() else "missing"
        app_context(ctx).stdout.write(f"{name:<9} {p}  ({state})\n")


@app.command("validate")
def validate(ctx: typer.Context) -> None:
    """Load every layer; exit 2 naming the file, line and key of the first problem.

    Warns about keys of attest.yaml that a higher layer overrides with another value."""
    from attest_cli.config.shadowing import shadow_warnings

    settings = _settings(ctx)
    for line in shadow_warnings(settings, app_context(ctx).display):
        app_context(ctx).stderr.write(f"attest: warning: {line}\n")
    layers = sorted({o for o in settings.origins.values()})
    app_context(ctx).stdout.write(f"configuration ok ({len(settings.values)} keys; layers: "
                     f"{', '.join(layers)})\n")
