"""Benchmark results stored by label under ``.attest/benchmarks/<label>.json``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attest_cli import __version__
from attest_cli.atomic import write_atomic
from attest_cli.bench import gitref
from attest_cli.bench.result import BenchmarkResult
from attest_cli.context import AppContext
from attest_cli.errors import InputError, UsageError

LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


def directory(ctx: AppContext) -> Path:
    return ctx.state_dir / "benchmarks"


def default_label(project: Path) -> str:
    """``git describe --tags --always --dirty`` of the project, else the attest version."""
    described = gitref.describe(project)
    return clean_label(described) if described else f"attest-{__version__}"


def clean_label(text: str) -> str:
    """A describe or ref name made safe as a file name (``/`` becomes ``-``)."""
    return re.sub(r"[^A-Za-z0-9._+-]", "-", text).lstrip(".-") or "unnamed"


def check_label(label: str) -> str:
    if not LABEL_RE.match(label):
        raise UsageError(f"--label {label!r}: use letters, digits and . _ + - "
                         "(at most 128, not starting with . or -)")
    return label


def path_for(ctx: AppContext, label: str) -> Path:
    return directory(ctx) / f"{check_label(label)}.json"


def save(ctx: AppContext, result: BenchmarkResult) -> Path:
    path = path_for(ctx, result.label)
    write_atomic(path, result.to_json())
    return path


def find(ctx: AppContext, label: str) -> Path | None:
    if not LABEL_RE.match(label):
        return None
    path = directory(ctx) / f"{label}.json"
    return path if path.is_file() else None


@dataclass
class StoredResult:
    label: str
    path: Path
    result: BenchmarkResult | None
    error: str | None = None


def list_results(ctx: AppContext) -> list[StoredResult]:
    """Every stored result, newest first; unreadable files are listed with their error."""
    folder = directory(ctx)
    if not folder.is_dir():
        return []
    out = []
    for path in folder.glob("*.json"):
        try:
            out.append(StoredResult(path.stem, path, BenchmarkResult.load(path)))
        except InputError as exc:
            out.append(StoredResult(path.stem, path, None, str(exc)))
    out.sort(key=lambda s: (s.result.created_at if s.result else "", s.label), reverse=True)
    return out


def catalogue(ctx: AppContext) -> list[dict[str, Any]]:
    """One row per stored result (``attest benchmark list``): an unreadable one says why."""
    rows: list[dict[str, Any]] = []
    for e in list_results(ctx):
        r = e.result
        if r is None:
            rows.append({"label": e.label, "path": ctx.display(e.path), "error": e.error})
            continue
        git = r.environment.get("git") or {}
        rows.append({"label": e.label, "path": ctx.display(e.path), "created_at": r.created_at,
                     "pipeline": r.pipeline.get("name"), "iterations": r.iterations,
                     "cache": r.settings.get("cache"), "commit": git.get("commit"),
                     "total_mean_seconds": r.summary("total", "wall").mean})
    return rows
