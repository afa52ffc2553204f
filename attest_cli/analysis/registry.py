"""Renderers keyed by (file kind, format name), filled by the format modules.

Each built-in format module calls :func:`register` when imported; a new format (or a new
kind, such as benchmark results in ``analysis/benchmark.py``) only has to do the same.
Modules are imported on first lookup, and each imports its heavy library lazily.
Third-party packages add renderers through the entry-point group ``attest.renderers``: each
entry point is a callable taking :func:`register`; one that fails is a warning, not a crash.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from attest_cli.errors import NotAvailableError, UsageError

if TYPE_CHECKING:
    from attest_cli.analysis.subject import Subject

Renderer = Callable[["Subject"], str]

FORMATS = ("text", "json", "html", "speedscope", "flamegraph", "table", "stats",
           "chrome-trace")
BUILTIN_MODULES = ("text", "json_summary", "html", "speedscope", "flamegraph", "table",
                   "stats", "chrome_trace", "benchmark")

log = logging.getLogger("attest.reports")
ENTRY_POINT_GROUP = "attest.renderers"

_renderers: dict[tuple[str, str], Renderer] = {}
_loaded = False


def register(kind: str, fmt: str, func: Renderer) -> None:
    """Make ``func(subject) -> str`` the renderer of ``kind`` files in format ``fmt``."""
    _renderers[(kind, fmt)] = func


def _load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for name in BUILTIN_MODULES:
            importlib.import_module(f"attest_cli.analysis.{name}")
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                ep.load()(register)
            except Exception as exc:
                log.warning("report renderer plug-in %s could not load: %s", ep.name, exc)


def formats_for(kind: str) -> list[str]:
    _load()
    return [fmt for fmt in FORMATS if (kind, fmt) in _renderers] + sorted(
        fmt for (k, fmt) in _renderers if k == kind and fmt not in FORMATS)


def renderer(kind: str, fmt: str, describe: str) -> Renderer:
    """The renderer, or a usage error listing the formats this kind of file has."""
    _load()
    found = _renderers.get((kind, fmt))
    if found is not None:
        return found
    available = formats_for(kind)
    if not available:
        raise NotAvailableError(f"analyzing {describe} is not available yet in this "
                                "version of attest")
    raise UsageError(f"--format {fmt} does not apply to {describe}; use one of: "
                     + ", ".join(available))
