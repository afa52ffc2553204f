"""Health checks (seed §7): the protocol, the built-in checks and the plug-in registry.

A check is any object with a ``name`` and ``async def check(self) -> HealthStatus``.
Readiness runs every check concurrently, each bounded by ``health.timeout``; one check
that hangs or raises is that check's failure, never the whole probe's. Third-party checks
come from the entry-point group ``attest.health_checks`` (built-ins are registered the
same way internally); a plug-in that fails to load is a warning and a ``degraded`` entry.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from attest_cli.config.layers import Settings
from attest_cli.context import AppContext
from attest_cli.redaction import redact_text, redact_url

log = logging.getLogger("attest.health")

ENTRY_POINT_GROUP = "attest.health_checks"
HEALTHY, DEGRADED, UNHEALTHY = "healthy", "degraded", "unhealthy"
_SEVERITY = {HEALTHY: 0, DEGRADED: 1, UNHEALTHY: 2}


@dataclass(frozen=True)
class HealthStatus:
    """The answer of one check: healthy, degraded (works, but worse) or unhealthy."""

    status: str
    detail: str = ""

    @classmethod
    def healthy(cls, detail: str = "") -> HealthStatus:
        return cls(HEALTHY, detail)

    @classmethod
    def degraded(cls, reason: str) -> HealthStatus:
        return cls(DEGRADED, reason)

    @classmethod
    def unhealthy(cls, reason: str) -> HealthStatus:
        return cls(UNHEALTHY, reason)


class HealthCheck(Protocol):
    name: str

    async def check(self) -> HealthStatus: ...


@dataclass
class HealthContext:
    """Handed to a check class whose constructor takes one argument."""

    app: AppContext
    settings: Settings
    timeout: float
    executor: concurrent.futures.Executor

    async def blocking(self, func: Callable[[], HealthStatus]) -> HealthStatus:
        """Run blocking I/O off the event loop, so checks stay concurrent. On a daemon
        thread of its own: a probe stuck on a slow peer past ``health.timeout`` must hold
        neither a pool worker nor the process's exit (pool threads are joined at exit)."""
        from attest_cli.deadline import in_daemon_thread

        return await in_daemon_thread(func)


@dataclass
class CheckResult:
    status: str
    detail: str
    duration_ms: float


@dataclass
class HealthReport:
    status: str
    checks: dict[str, CheckResult] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status != UNHEALTHY

    @property
    def http_status(self) -> int:
        return 200 if self.ok else 503

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status,
                "checks": {name: {"status": r.status, "detail": r.detail,
                                  "duration_ms": r.duration_ms}
                           for name, r in self.checks.items()}}


# -- built-in checks ------------------------------------------------------------------------
class CacheHealthCheck:
    """The seed's example: ping the configured cache backend."""

    name = "cache"

    def __init__(self, hctx: HealthContext) -> None:
        self.hctx = hctx

    async def check(self) -> HealthStatus:
        return await self.hctx.blocking(self._ping)

    def _ping(self) -> HealthStatus:
        s = self.hctx.settings
        if not s["cache.enabled"]:
            return HealthStatus.healthy("cache disabled")
        backend = s["cache.backend"]
        try:
            if backend in ("redis", "s3"):
                answer = self._remote(s)
                if answer is not None:
                    return answer
            if backend == "redis":
                return self._redis(s)
            if backend == "s3":
                return self._s3(s)
            return self._local(s)
        except Exception as exc:
            return HealthStatus.unhealthy(f"Cache unavailable: {backend}: {exc}")

    def _local(self, s: Settings) -> HealthStatus:
        root = self.hctx.app.path(str(s["cache.dir"]))
        probe = root
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        import os

        if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
            return HealthStatus.unhealthy(f"Cache unavailable: {root} is not writable")
        return HealthStatus.healthy(f"local: {root}")

    def _remote(self, s: Settings) -> HealthStatus | None:
        """Ping through the cache package's own backend (same endpoint, auth and prefix)."""
        try:
            from attest_cli.cache.setup import open_remote
        except ImportError:
            return None
        backend = open_remote(s, self.hctx.app.environ)
        if backend is None:
            return None
        try:
            backend.ping()
        finally:
            backend.close()
        where = redact_url(s["cache.endpoint"]) if backend.name == "redis" else s["cache.bucket"]
        return HealthStatus.healthy(f"{backend.name}: {where}")

    def _redis(self, s: Settings) -> HealthStatus:
        import redis

        endpoint = str(s["cache.endpoint"]).strip()
        if not endpoint:
            return HealthStatus.unhealthy("Cache unavailable: cache.endpoint is not set")
        url = endpoint if "://" in endpoint else f"redis://{endpoint}"
        timeout = min(float(s["cache.timeout"]), self.hctx.timeout)
        client = redis.Redis.from_url(url, socket_timeout=timeout,
                                      socket_connect_timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
        return HealthStatus.healthy(f"redis: {redact_url(endpoint)}")

    def _s3(self, s: Settings) -> HealthStatus:
        import boto3
        from botocore.config import Config

        bucket = str(s["cache.bucket"]).strip()
        if not bucket:
            return HealthStatus.unhealthy("Cache unavailable: cache.bucket is not set")
        timeout = min(float(s["cache.timeout"]), self.hctx.timeout)
        client = boto3.client(
            "s3", endpoint_url=str(s["cache.endpoint_url"]) or None,
            region_name=str(s["cache.region"]) or None,
            config=Config(connect_timeout=timeout, read_timeout=timeout,
                          retries={"max_attempts": 1}))
        client.head_bucket(Bucket=bucket)
        return HealthStatus.healthy(f"s3: {bucket}")


class HistoryHealthCheck:
    """The run history can take a write (a rolled-back transaction)."""

    name = "history"

    def __init__(self, hctx: HealthContext) -> None:
        self.hctx = hctx

    async def check(self) -> HealthStatus:
        return await self.hctx.blocking(self._write)

    def _write(self) -> HealthStatus:
        from attest_cli.metrics.history import HistoryDB

        db = HistoryDB.from_settings(self.hctx.app, self.hctx.settings)
        try:
            db.check_writable()
        except Exception as exc:
            return HealthStatus.unhealthy(f"run history {db.path} is not writable: {exc}")
        return HealthStatus.healthy(str(db.path))


class SigningKeyHealthCheck:
    """The signing key can be read (only when signing is configured)."""

    name = "signing_key"

    def __init__(self, hctx: HealthContext) -> None:
        self.hctx = hctx
        self.path = hctx.app.path(str(hctx.settings["signing.key"]))

    @staticmethod
    def configured(hctx: HealthContext) -> bool:
        """Explicitly set (any layer), or the default key exists."""
        s = hctx.settings
        return (s.origins.get("signing.key", "default") != "default"
                or hctx.app.path(str(s["signing.key"])).exists())

    async def check(self) -> HealthStatus:
        return await self.hctx.blocking(self._read)

    def _read(self) -> HealthStatus:
        try:
            with open(self.path, "rb") as fh:
                data = fh.read(1 << 16)
        except OSError as exc:
            return HealthStatus.unhealthy(f"signing key {self.path}: {exc.strerror or exc}")
        if not data.strip():
            return HealthStatus.unhealthy(f"signing key {self.path} is empty")
        return HealthStatus.healthy(str(self.path))  # never the key itself


class _BrokenPlugin:
    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason

    async def check(self) -> HealthStatus:
        return HealthStatus.degraded(self.reason)


def builtin_checks(hctx: HealthContext) -> list[Any]:
    checks: list[Any] = [CacheHealthCheck(hctx), HistoryHealthCheck(hctx)]
    if SigningKeyHealthCheck.configured(hctx):
        checks.append(SigningKeyHealthCheck(hctx))
    return checks


def _instantiate(obj: Any, hctx: HealthContext) -> Any:
    if inspect.isclass(obj) or (callable(obj) and not hasattr(obj, "check")):
        try:
            params = [p for p in inspect.signature(obj).parameters.values()
                      if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY,
                                                             p.POSITIONAL_OR_KEYWORD)]
        except (TypeError, ValueError):
            params = []
        obj = obj(hctx) if params else obj()
    if not callable(getattr(obj, "check", None)):
        raise TypeError("has no check() method")
    return obj


def plugin_checks(hctx: HealthContext) -> list[Any]:
    """Checks from the ``attest.health_checks`` entry points of installed packages."""
    from importlib.metadata import entry_points

    out: list[Any] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            check = _instantiate(ep.load(), hctx)
            if not isinstance(getattr(check, "name", None), str) or not check.name:
                check.name = ep.name
        except Exception as exc:
            log.warning("health check plug-in %s (%s) failed to load: %s", ep.name, ep.value,
                        exc)
            check = _BrokenPlugin(ep.name, f"plug-in failed to load: {exc}")
        out.append(check)
    return out


async def _run_one(check: Any, timeout: float) -> CheckResult:
    t0 = time.perf_counter()
    try:
        result = await asyncio.wait_for(check.check(), timeout)
        if not isinstance(result, HealthStatus) or result.status not in _SEVERITY:
            result = HealthStatus.unhealthy(f"check returned {result!r}, not a HealthStatus")
    except TimeoutError:
        result = HealthStatus.unhealthy(f"timed out after {timeout:g}s")
    except Exception as exc:
        result = HealthStatus.unhealthy(f"check raised {type(exc).__name__}: {exc}")
    return CheckResult(result.status, redact_text(result.detail),
                       round((time.perf_counter() - t0) * 1000, 3))


async def run_checks(checks: Sequence[Any], timeout: float) -> HealthReport:
    """Every check at once; the overall status is the worst one."""
    results = await asyncio.gather(*(_run_one(c, timeout) for c in checks))
    report = HealthReport(status=HEALTHY)
    for check, result in zip(checks, results, strict=True):
        name, n = str(check.name), 2
        while name in report.checks:
            name, n = f"{check.name}_{n}", n + 1
        report.checks[name] = result
        if _SEVERITY[result.status] > _SEVERITY[report.status]:
            report.status = result.status
    return report


class Readiness:
    """The readiness probe of one process: checks are built once and run on each call."""

    def __init__(self, app: AppContext, settings: Settings) -> None:
        self.timeout = float(settings["health.timeout"])
        # bounded pool: a hung check occupies one worker, never blocks the other checks
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=16,
                                                              thread_name_prefix="attest-health")
        self.hctx = HealthContext(app, settings, self.timeout, self.executor)
        self.checks = builtin_checks(self.hctx) + plugin_checks(self.hctx)

    def evaluate(self) -> HealthReport:
        # Not asyncio.run(): it waits for the default executor's threads at the end, so a
        # plug-in stuck in asyncio.to_thread() would hold the probe past its timeout.
        # loop.close() lets such a thread go (shutdown without waiting).
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(run_checks(self.checks, self.timeout))
        finally:
            loop.close()

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
