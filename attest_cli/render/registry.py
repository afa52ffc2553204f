"""Every result type's registry of renderers, and the ``attest.renderers`` plug-ins.

One :class:`Registry` per result type, its built-in formats named by ``"module:attribute"``
and imported only when asked for (each imports its heavy library lazily, too). The
``attest analyze`` registries (``run``, ``cpu``, ``memory``, ``benchmark``: one per kind of
file, see :mod:`attest_cli.analysis.detect`) render a loaded
:class:`~attest_cli.analysis.subject.Subject`; the others render what a command's service
returns.

Third-party packages add renderers through the entry-point group ``attest.renderers``: each
entry point is a callable taking :func:`register` (``register(kind, fmt, func)``), and
lands in the same registry as the built-ins. One that fails is a warning, not a crash.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from attest_cli.analysis.detect import BENCHMARK, CPU, KINDS, MEMORY, RUN
from attest_cli.render.base import Registry

if TYPE_CHECKING:
    from attest_cli.analysis.subject import Subject
    from attest_cli.attestation.verify import VerificationResult
    from attest_cli.bench.compare import Comparison
    from attest_cli.bench.result import BenchmarkResult
    from attest_cli.config.schema import Key
    from attest_cli.health.checks import HealthReport
    from attest_cli.metrics.history import RunRecord
    from attest_cli.render.benchmark import StoredResults
    from attest_cli.render.cache import CacheStats, Explanation
    from attest_cli.render.config import ShownSettings
    from attest_cli.render.pipeline_graph import Drawing
    from attest_cli.render.plan import Plan

log = logging.getLogger("attest.reports")
ENTRY_POINT_GROUP = "attest.renderers"
_A = "attest_cli.render.analysis"


def _load_plugins() -> None:
    """Feed the registries from the ``attest.renderers`` entry points (once)."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()(register)
        except Exception as exc:
            log.warning("report renderer plug-in %s could not load: %s", ep.name, exc)


class _Plugins:
    """Loads the plug-ins before the first look-up in any registry, exactly once."""

    done = False

    def __call__(self) -> None:
        if not _Plugins.done:
            _Plugins.done = True
            _load_plugins()


_plugins = _Plugins()


def _registry(name: str, describe: str, builtins: dict[str, str]) -> Registry[Any]:
    return Registry(name, describe, builtins, prepare=_plugins)


# -- attest analyze: one registry per kind of file --------------------------------------
RUN_REPORT: Registry[Subject] = _registry(RUN, KINDS[RUN], {
    "text": f"{_A}.text:render", "json": f"{_A}.json_summary:render",
    "html": f"{_A}.html:render", "chrome-trace": f"{_A}.chrome_trace:render"})
CPU_PROFILE: Registry[Subject] = _registry(CPU, KINDS[CPU], {
    "text": f"{_A}.text:render", "json": f"{_A}.json_summary:render",
    "html": f"{_A}.html:render", "speedscope": f"{_A}.speedscope:render"})
MEMORY_CAPTURE: Registry[Subject] = _registry(MEMORY, KINDS[MEMORY], {
    "text": f"{_A}.text:render", "json": f"{_A}.json_summary:render",
    "html": f"{_A}.html:render", "flamegraph": f"{_A}.flamegraph:render",
    "table": f"{_A}.table:render", "stats": f"{_A}.stats:render"})
BENCHMARK_FILE: Registry[Subject] = _registry(BENCHMARK, KINDS[BENCHMARK], {
    "text": f"{_A}.benchmark:render_text", "json": f"{_A}.benchmark:render_json",
    "html": f"{_A}.benchmark:render_html", "markdown": f"{_A}.benchmark:render_markdown"})

# -- what commands print ------------------------------------------------------------------
VERIFICATION: Registry[list[VerificationResult]] = _registry(
    "verification", "receipt verification results", {
        "text": "attest_cli.render.verification:render_text",
        "json": "attest_cli.render.verification:render_json"})
HISTORY: Registry[list[RunRecord]] = _registry("history", "the run history", {
    "table": "attest_cli.render.history:as_table",
    "json": "attest_cli.render.history:render_json"})
BENCHMARK_RESULT: Registry[BenchmarkResult] = _registry("benchmark-result", "a benchmark result", {
    "table": "attest_cli.render.benchmark:ResultText",
    "json": "attest_cli.render.benchmark:result_json",
    "markdown": "attest_cli.render.benchmark:ResultMarkdown"})
COMPARISON: Registry[Comparison] = _registry("comparison", "a benchmark comparison", {
    "table": "attest_cli.render.benchmark:ComparisonText",
    "json": "attest_cli.render.benchmark:comparison_json",
    "markdown": "attest_cli.render.benchmark:comparison_markdown"})
STORED_RESULTS: Registry[StoredResults] = _registry("stored-results",
                                                   "the stored benchmark results", {
    "table": "attest_cli.render.benchmark:StoredTable",
    "json": "attest_cli.render.benchmark:stored_json"})
HEALTH: Registry[HealthReport] = _registry("health", "a health report", {
    "text": "attest_cli.render.health:render_text",
    "json": "attest_cli.render.health:render_json"})
CACHE_STATS: Registry[CacheStats] = _registry("cache-stats", "cache statistics", {
    "table": "attest_cli.render.cache:stats_table",
    "json": "attest_cli.render.cache:stats_json"})
CACHE_EXPLAIN: Registry[Explanation] = _registry("cache-explain", "a cache key's explanation", {
    "table": "attest_cli.render.cache:explain_table",
    "json": "attest_cli.render.cache:explain_json"})
PIPELINE_GRAPH: Registry[Drawing] = _registry("pipeline-graph", "a pipeline's DAG", {
    "ascii": "attest_cli.render.pipeline_graph:render_ascii",
    "mermaid": "attest_cli.render.pipeline_graph:render_mermaid",
    "dot": "attest_cli.render.pipeline_graph:render_dot",
    "json": "attest_cli.render.pipeline_graph:render_json"})
CONFIG_KEYS: Registry[list[Key]] = _registry("config-keys", "the configuration keys", {
    "table": "attest_cli.render.config:keys_table", "json": "attest_cli.render.config:keys_json"})
CONFIG_SETTINGS: Registry[ShownSettings] = _registry("config-settings", "the configuration", {
    "text": "attest_cli.render.config:settings_text",
    "json": "attest_cli.render.config:settings_json"})
RUN_PLAN: Registry[Plan] = _registry("plan", "a dry-run plan", {
    "text": "attest_cli.render.plan:render_text", "json": "attest_cli.render.plan:render_json"})

REGISTRIES: dict[str, Registry[Any]] = {r.name: r for r in (
    RUN_REPORT, CPU_PROFILE, MEMORY_CAPTURE, BENCHMARK_FILE, VERIFICATION, HISTORY,
    BENCHMARK_RESULT, COMPARISON, STORED_RESULTS, HEALTH, CACHE_STATS, CACHE_EXPLAIN,
    PIPELINE_GRAPH, CONFIG_KEYS, CONFIG_SETTINGS, RUN_PLAN)}


def register(kind: str, fmt: str, func: Callable[[Any], str]) -> None:
    """Make ``func(value) -> str`` the renderer of format ``fmt`` for ``kind``.

    ``kind`` names a registry: ``run``, ``cpu``, ``memory`` or ``benchmark`` for
    ``attest analyze`` (``func`` gets the loaded Subject), or a command's result type such as
    ``verification`` or ``history``. An unknown kind gets a registry of its own.
    """
    if kind not in REGISTRIES:
        REGISTRIES[kind] = _registry(kind, kind, {})
    REGISTRIES[kind].add(fmt, func)


def for_kind(kind: str, describe: str | None = None) -> Registry[Any]:
    """The registry of a kind of analyzed file (``attest analyze``); an empty one (whose
    every look-up says "not available yet") for a kind nothing renders."""
    found = REGISTRIES.get(kind)
    return found if found is not None else Registry(kind, describe or kind, {},
                                                    prepare=_plugins)
