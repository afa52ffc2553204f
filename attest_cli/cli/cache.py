"""``attest cache``: inspect and maintain the step cache (core in ``attest_cli.cache.service``)."""

from __future__ import annotations

import sys
import time
from enum import Enum
from pathlib import Path

import typer

from attest_cli.cli.common import app_context, configure_logging, print_json
from attest_cli.errors import AttestError, ExitCode
from attest_cli.escaping import escape_control as esc

HELP = "Inspect and maintain the step cache (stats, verify, clear, prune, explain)."
app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)


class Format(str, Enum):
    table = "table"
    json = "json"


def _short(value: str) -> str:
    """``-:blake3:89d96d68e13d...`` -> ``-:blake3:89d96d68e13d``: enough to tell them apart."""
    head, sep, digest = value.rpartition(":")
    return f"{head}{sep}{digest[:12]}" if len(digest) > 12 else value


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


@app.command("stats")
def stats(ctx: typer.Context, fmt: Format = typer.Option(Format.table, "--format", "-f",
                                                          help="table or json.")) -> None:
    """Entries, bytes and hit rate (from the run history) per backend."""
    from attest_cli.cache import service

    app_ctx = app_context(ctx)
    configure_logging(app_ctx)
    rows = service.stats(app_ctx)
    if fmt is Format.json:
        print_json({"backends": rows})
        return
    out = sys.stdout
    out.write(f"{'backend':<8} {'entries':>8} {'size':>10} {'hits':>6} {'misses':>7} "
              f"{'hit rate':>9}\n")
    for r in rows:
        rate = "-" if r["hit_rate"] is None else f"{r['hit_rate'] * 100:.1f}%"
        out.write(f"{r['backend']:<8} {r['entries']:>8} {_size(r['bytes']):>10} {r['hits']:>6} "
                  f"{r['misses']:>7} {rate:>9}\n")
        if r["error"]:
            out.write(f"  ({r['backend']} unavailable: {esc(r['error'])})\n")


@app.command("verify")
def verify(ctx: typer.Context, repair: bool = typer.Option(
        False, "--repair", help="Delete entries that fail (they become misses).")) -> None:
    """Check every entry's manifest and blobs against their digests (exit 1 on problems)."""
    from attest_cli.cache import service

    app_ctx = app_context(ctx)
    configure_logging(app_ctx)
    outcome = service.verify(app_ctx, repair=repair)
    out = sys.stdout
    for p in outcome.problems:
        action = "removed" if p.repaired else "corrupt"
        detail = esc("; ".join(p.problems))
        out.write(f"{action}: {p.backend} entry {esc(p.key[:16])}: {detail}\n")
    left = [p for p in outcome.problems if not p.repaired]
    out.write(f"{outcome.checked} entr{'y' if outcome.checked == 1 else 'ies'} checked, "
              f"{len(outcome.problems)} with problems"
              + (" (repaired)" if repair and outcome.problems and not left else "") + "\n")
    if left:
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
        sys.stdout.write(f"{backend}: removed {n} object(s)\n")


@app.command("prune")
def prune(ctx: typer.Context) -> None:
    """Apply cache.retention_days and cache.max_size now (and drop unreferenced blobs)."""
    from attest_cli.cache import service

    app_ctx = app_context(ctx)
    configure_logging(app_ctx)
    for backend, r in service.prune(app_ctx).items():
        sys.stdout.write(f"{backend}: removed {r.entries_removed} entr"
                         f"{'y' if r.entries_removed == 1 else 'ies'} and {r.blobs_removed} "
                         f"blob(s), freed {_size(r.bytes_freed)}, {_size(r.bytes_left)} left\n")


@app.command("explain")
def explain(ctx: typer.Context, step: str = typer.Argument(..., help="The step to explain."),
            pipeline: Path | None = typer.Option(None, "--pipeline", "-p",
                                                 help="Pipeline file [default: attest.yaml]."),
            fmt: Format = typer.Option(Format.table, "--format", "-f",
                                       help="table or json.")) -> None:
    """Show a step's cache key components and what changed since the last stored entry."""
    from attest_cli.cache import service

    app_ctx = app_context(ctx)
    configure_logging(app_ctx)
    data = service.explain(app_ctx, step, str(pipeline) if pipeline else None)
    if fmt is Format.json:
        print_json(data)
        return
    out = sys.stdout
    out.write(f"step {data['step']}: key {data['key']}\n")
    if not data["cacheable"]:
        out.write("  cache: false - this step is never looked up\n")
    for name, value in sorted(data["components"].items()):
        out.write(f"  {esc(name):<40} {esc(value)}\n")
    where = ", ".join(f"{b}: {'present' if v is True else 'absent' if v is False else v}"
                      for b, v in data["in_cache"].items())
    out.write(f"in cache: {where}\n")
    last = data["last_entry"]
    if last is None:
        out.write("last stored entry: none recorded for this step\n")
    else:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last["at"] or 0))
        out.write(f"last stored entry: {str(last['key'])[:16]} ({when})\n")
        if data["changes"]:
            out.write("differs from it in:\n")
            for d in data["changes"]:
                detail = "" if d["before"] is None or d["now"] is None else \
                    f" ({_short(d['before'])} -> {_short(d['now'])})"
                out.write(f"  - {esc(d['change'])}{esc(detail)}\n")
        else:
            out.write("no component differs from it\n")
    out.write("next run: " + ("hit (restored, not executed)" if data["would_hit"]
                              else "miss (the step will run)") + "\n")
