"""``attest config``: read and write the layered configuration (SPEC §4)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import typer

from attest_cli.cli.common import app_context

if TYPE_CHECKING:
    from attest_cli.config.layers import Settings

HELP = "Get, set and inspect the layered configuration."
app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)


def _display(value: object) -> str:
    """A value on one line of text: credentials in URLs redacted, control characters escaped."""
    from attest_cli.escaping import escape_control

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(_shown(value))
    return escape_control(_shown(value))


def _shown(value: object) -> object:
    """A value as printed: credentials inside URLs (``redis://:pw@h``) become ``***``."""
    from attest_cli.redaction import redact_url

    if isinstance(value, str):
        return redact_url(value) if ("@" in value or "?" in value or "#" in value) else value
    if isinstance(value, list):
        return [_shown(v) for v in value]
    if isinstance(value, dict):
        return {k: _shown(v) for k, v in value.items()}
    return value


def _settings(ctx: typer.Context) -> Settings:
    app_ = app_context(ctx)
    return app_.settings(pipeline_doc=app_.pipeline_doc())


@app.command("get")
def get(ctx: typer.Context, key: str = typer.Argument(..., help="Dotted key, e.g. cache.dir.")
        ) -> None:
    """Print the effective value of KEY."""
    from attest_cli.config.schema import KEYS, lookup

    spec = lookup(key)
    value = _settings(ctx).get(key)
    sys.stdout.write(("<set>" if spec.secret and value else _display(value)) + "\n"
                     if key in KEYS else "")


@app.command("set")
def set_(ctx: typer.Context, key: str = typer.Argument(...), value: str = typer.Argument(...),
         global_: bool = typer.Option(False, "--global", help="Write the user file instead.")
         ) -> None:
    """Validate VALUE for KEY and write it to the project (or user) file."""
    from attest_cli.config.layers import write_key

    app_ = app_context(ctx)
    path = app_.sources().user_file if global_ else app_.sources().project_file
    coerced = write_key(path, key, value)
    sys.stderr.write(f"{key} = {_display(coerced)} ({path})\n")


@app.command("unset")
def unset(ctx: typer.Context, key: str = typer.Argument(...),
          global_: bool = typer.Option(False, "--global")) -> None:
    """Remove KEY from the project (or user) file."""
    from attest_cli.config.layers import write_key

    app_ = app_context(ctx)
    path = app_.sources().user_file if global_ else app_.sources().project_file
    write_key(path, key, None)
    sys.stderr.write(f"{key} unset ({path})\n")


@app.command("list")
def list_(ctx: typer.Context,
          fmt: str = typer.Option("table", "--format", "-f", help="table or json")) -> None:
    """Every key with its type, default and meaning."""
    from attest_cli.config.schema import KEYS

    if fmt == "json":
        sys.stdout.write(json.dumps([{"key": k.name, "type": k.kind,
                                      "default": _shown(k.default),
                                      "choices": list(k.choices), "doc": k.doc}
                                     for k in KEYS.values()], indent=2) + "\n")
        return
    width = max(len(k) for k in KEYS)
    for k in KEYS.values():
        kind = "|".join(k.choices) if k.choices else k.kind
        sys.stdout.write(f"{k.name:<{width}}  {kind:<14}  {_display(k.default):<16}  {k.doc}\n")


@app.command("show")
def show(ctx: typer.Context, origin: bool = typer.Option(False, "--origin",
                                                         help="Say which layer set each value."),
         fmt: str = typer.Option("text", "--format", "-f", help="text or json")) -> None:
    """The effective configuration."""
    from attest_cli.config.schema import KEYS

    settings = _settings(ctx)
    if fmt == "json":
        sys.stdout.write(json.dumps(
            {k: ({"value": _shown(v), "origin": settings.origins[k]} if origin else _shown(v))
             for k, v in settings.values.items()
             if not (KEYS[k].secret and v)} , indent=2, default=str) + "\n")
        return
    for key, value in settings.values.items():
        shown = "<set>" if KEYS[key].secret and value else _display(value)
        line = f"{key} = {shown}"
        if origin:
            line += f"    # {settings.origins[key]}"
        sys.stdout.write(line + "\n")


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
        sys.stdout.write(f"{name:<9} {p}  ({state})\n")


@app.command("validate")
def validate(ctx: typer.Context) -> None:
    """Load every layer; exit 2 naming the file, line and key of the first problem."""
    settings = _settings(ctx)
    layers = sorted({o for o in settings.origins.values()})
    sys.stdout.write(f"configuration ok ({len(settings.values)} keys; layers: "
                     f"{', '.join(layers)})\n")
