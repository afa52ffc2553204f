"""``attest cache``: inspect and maintain the step cache (core in ``attest_cli.cache.service``)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from attest_cli.cli.common import app_context, configure_logging
from attest_cli.errors import AttestError, ExitCode

HELP = "Inspect and maintain the step cache (stats, verify, clear, prune, explain)."
app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)


class Format(str, Enum):
    table = "table"
    json = "json"


@app.command("stats")
def stats(ctx: typer.Context, fmt: Format = typer.Option(Format.table, "--format", "-f",
                                                          help="table or json.")) -> None:
    """Entries, bytes and hit rate (from the run history) per backend."""
    from attest_cli.cache import service
    from attest_cli.render.registry import CACHE_STATS

    app_ctx = app_context(ctx)
    configure_logging(app_ctx)
    app_ctx.stdout.write(CACHE_STATS.render(fmt.value, service.stats(app_ctx)))


@app.command("verify")
def verify(ctx: typer.Context, repair: bool = typer.Option(
        False, "--repair", help="Delete entries that fail (they become misses).")) -> None:
    """Check every entry's manifest and blobs against their digests (exit 1 on problems)."""
    from attest_cli.cache import service
    from attest_cli.render.cache import verify_text

    app_ctx = app_context(ctx)
    configure_logging(app_ctx)
    outcome = service.verify(app_ctx, repair=repair)
    app_ctx.stdout.write(verify_text(outcome, repair=repair))
    if any(not p.repaired for p in outcome.problems):
        hint = ("cache.mode is read-only: the remote cache was not modified" if repair else
                "run 'attest cache verify --repair' to remove the broken entries")
        raise AttestError(f"cache verification failed ({hint})", exit_code=ExitCode.FAILURE)


@app.command("clear")
def clear(ctx: typer.Context, all_: bool = typer.Option(
        False, "--all", help="Also empty the remote backend (under cache.prefix).")) -> None:
    """Delete the local cache entries (and with --all the remote ones)."""
    from attest_cli.cache import service

    app_ctx = app_context(ctx)
    configure_logging(app_ctx)
    removed = service.clear(app_ctx, everything=all_)
    for backend, n in removed.items():
        app_ctx.stdout.write(f"{backend}: removed {n} object(s)\n")


@app.command("prune")
def prune(ctx: typer.Context) -> None:
    """Apply cache.retention_days and cache.max_size now (and drop unreferenced blobs)."""
    from attest_cli.cache import service
    from attest_cli.render.cache import size

    app_ctx = app_context(ctx)
    configure_logging(app_ctx)
    for backend, r in service.prune(app_ctx).items():
        app_ctx.stdout.write(f"{backend}: removed {r.entries_removed} entr"
                         f"{'y' if r.entries_removed == 1 else 'ies'} and {r.blobs_removed} "
                         f"blob(s), freed {size(r.bytes_freed)}, {size(r.bytes_left)} left\n")


@app.command("explain")
def explain(ctx: typer.Context, step: str = typer.Argument(..., help="The step to explain."),
            pipeline: Path | None = typer.Option(None, "--pipeline", "-p",
                                                 help="Pipeline file [default: attest.yaml]."),
            fmt: Format = typer.Option(Format.table, "--format", "-f",
                                       help="table or json.")) -> None:
    """Show a step's cache key components and what changed since the last stored entry."""
    from attest_cli.cache import service
    from attest_cli.render.registry import CACHE_EXPLAIN

    app_ctx = app_context(ctx)
    configure_logging(app_ctx)
    data = service.explain(app_ctx, step, str(pipeline) if pipeline else None)
    app_ctx.stdout.write(CACHE_EXPLAIN.render(fmt.value, data))
