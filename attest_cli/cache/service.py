"""What ``attest cache ...`` does, as functions returning data (the CLI only renders).

Each opens the configured cache the same way ``attest run`` does (:mod:`.setup`), so the
commands see the same directory, remote, prefix and mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from attest_cli.cache import maintenance, reapi_tier
from attest_cli.cache import store as entries
from attest_cli.cache.backends.base import BackendUnavailable, CacheBackend
from attest_cli.cache.setup import CacheUnavailable, build_cache, open_local, open_remote
from attest_cli.config.layers import Settings
from attest_cli.context import AppContext
from attest_cli.errors import UsageError


def _settings(ctx: AppContext, pipeline: str | None = None) -> Settings:
    return ctx.settings(pipeline_doc=ctx.pipeline_doc(pipeline))


def _backends(ctx: AppContext, settings: Settings) -> list[CacheBackend]:
    out: list[CacheBackend] = [open_local(ctx, settings)]
    remote = open_remote(settings, ctx.environ)
    if remote is not None:
        out.append(remote)
    return out


def stats(ctx: AppContext) -> list[dict[str, Any]]:
    """Entries, bytes and the hit rate (from the run history's totals) of every configured
    backend."""
    settings = _settings(ctx)
    history = maintenance.history_counts(ctx.path(str(settings["history.path"])))
    rows = []
    for backend in _backends(ctx, settings):
        try:
            row = maintenance.backend_stats(backend)
        except BackendUnavailable as exc:
            row = maintenance.BackendStats(backend=backend.name, entries=0, bytes=0,
                                           error=str(exc))
        finally:
            backend.close()
        counts = history.get(backend.name, {})
        row.hits, row.misses = counts.get("hits", 0), counts.get("misses", 0)
        rows.append(row.to_dict())
    return rows


@dataclass
class VerifyOutcome:
    checked: int
    problems: list[maintenance.VerifyProblem]
    repaired: bool


def verify(ctx: AppContext, *, repair: bool) -> VerifyOutcome:
    settings = _settings(ctx)
    backends = _backends(ctx, settings)
    read_only = settings["cache.mode"] == "read-only"
    # a remote we may only read is checked, never modified
    checks = [(b, repair and (i == 0 or not read_only)) for i, b in enumerate(backends)]
    try:
        checked, problems = maintenance.verify(checks)
    except BackendUnavailable as exc:
        raise CacheUnavailable(f"cannot verify the cache: {exc}") from None
    finally:
        for b in backends:
            b.close()
    return VerifyOutcome(checked=checked, problems=problems, repaired=repair)


def clear(ctx: AppContext, *, everything: bool) -> dict[str, int]:
    """Empty the local cache; with ``everything`` the remote one too (under its prefix)."""
    settings = _settings(ctx)
    backends = _backends(ctx, settings)
    if everything and len(backends) > 1 and settings["cache.mode"] == "read-only":
        raise UsageError("cache.mode is read-only: refusing to clear the "
                         f"{backends[1].name} cache")
    removed: dict[str, int] = {}
    try:
        for backend in backends if everything else backends[:1]:
            removed[backend.name] = maintenance.clear(backend)
    except BackendUnavailable as exc:
        raise CacheUnavailable(f"cannot clear the cache: {exc}") from None
    finally:
        for b in backends:
            b.close()
    index = ctx.state_dir / "cache-stat-index.json"
    index.unlink(missing_ok=True)
    return removed


def prune(ctx: AppContext) -> dict[str, maintenance.PruneResult]:
    """Apply ``cache.retention_days`` (all writable backends) and ``cache.max_size`` (local)."""
    settings = _settings(ctx)
    backends = _backends(ctx, settings)
    days = int(settings["cache.retention_days"])
    out = {}
    try:
        out[backends[0].name] = maintenance.prune(backends[0],
                                                  max_size=int(settings["cache.max_size"]),
                                                  retention_days=days)
        # Redis expires entries by itself (TTL from last use); reading every manifest to
        # prune it would only refresh those TTLs
        if len(backends) > 1 and backends[1].name != "redis" and \
                settings["cache.mode"] == "read-write":
            out[backends[1].name] = maintenance.prune(backends[1], max_size=None,
                                                      retention_days=days)
    except BackendUnavailable as exc:
        raise CacheUnavailable(f"cannot prune the cache: {exc}") from None
    finally:
        for b in backends:
            b.close()
    return out


def explain(ctx: AppContext, step_name: str, pipeline_file: str | None = None
            ) -> dict[str, Any]:
    """The step's key components now, the last stored entry's, what differs, and whether
    the key is in the cache (would the next run hit?)."""
    from attest_cli.config.schema import suggest
    from attest_cli.runner.features import RunOptions
    from attest_cli.runner.loading import load

    pipeline, settings, _order = load(ctx, RunOptions(pipeline=pipeline_file))
    if step_name not in pipeline.steps:
        raise UsageError(f"no step '{step_name}' in {ctx.display(pipeline.path)}"
                         f"{suggest(step_name, pipeline.steps)}")
    step = pipeline.steps[step_name]
    cache = build_cache(ctx, settings, check_required=False)
    try:
        report = cache.explain(pipeline, step, ctx.environ)
        present: dict[str, bool | str] = {}
        tiers: list[CacheBackend] = [cache.local]
        if cache.remote is not None:
            tiers.append(cache.remote)
        reapi_action: str | None = None
        for backend in tiers:
            try:
                if backend is cache.remote and cache.reapi is not None:
                    parts, states = cache.key_for(pipeline, step, ctx.environ)
                    present[backend.name], reapi_action = reapi_tier.contains(
                        cache.remote, cache.reapi, pipeline, step, ctx.environ, parts, states)
                else:
                    present[backend.name] = backend.contains(entries.entry_key(report.key))
            except BackendUnavailable as exc:
                present[backend.name] = f"unavailable: {exc}"
    finally:
        cache.close()
    previous = report.previous or {}
    return {
        "step": step_name,
        "cacheable": step.cache,
        "key": report.key,
        "components": report.parts.items,
        "in_cache": present,
        "would_hit": step.cache and any(v is True for v in present.values()),
        "last_entry": {"key": previous.get("key"), "at": previous.get("at")}
        if report.previous else None,
        "changes": report.changes,
        **({"reapi_action": reapi_action} if reapi_action else {}),
    }
