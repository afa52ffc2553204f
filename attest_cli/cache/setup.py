"""Build the cache a command needs from the settings: the local tier and the remote, if any.

Shared by ``attest run`` (:mod:`.runhook`) and ``attest cache ...`` so both see the same
directories, prefixes and timeouts.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attest_cli.cache.backends.base import CacheBackend
from attest_cli.cache.backends.guard import GuardedBackend
from attest_cli.cache.backends.local import LocalBackend
from attest_cli.cache.content_cache import ContentCache
from attest_cli.cache.statindex import StatIndex
from attest_cli.config.layers import Settings
from attest_cli.context import AppContext
from attest_cli.errors import AttestError, ConfigError, ExitCode


class CacheUnavailable(AttestError):
    """``cache.required`` is on and the remote backend cannot be reached."""

    exit_code = ExitCode.FAILURE


def local_dir(ctx: AppContext, settings: Settings) -> Path:
    return ctx.path(settings["cache.dir"])


def open_local(ctx: AppContext, settings: Settings) -> LocalBackend:
    compression = settings["cache.compression"]
    if compression == "zstd":
        try:
            import zstandard  # noqa: F401
        except ImportError:
            raise ConfigError("cache.compression: zstd needs the 'zstandard' package "
                              "(pip install zstandard)") from None
    return LocalBackend(local_dir(ctx, settings), compression=compression,
                        max_entry_size=int(settings["cache.max_entry_size"]))


def open_remote(settings: Settings, environ: Mapping[str, str]) -> CacheBackend | None:
    """The configured remote backend (not yet contacted), or None for ``local``.

    Under ``cache.mode: read-only`` the backend itself refuses every write and delete (and
    Redis skips its TTL refresh on reads), whichever command asks."""
    backend = settings["cache.backend"]
    timeout = float(settings["cache.timeout"])
    bounds: dict[str, Any] = {"max_entry_size": int(settings["cache.max_entry_size"]),
                              "read_only": settings["cache.mode"] == "read-only"}
    ttl = int(settings["cache.retention_days"]) * 86400
    if backend == "redis":
        from attest_cli.cache.backends.redis import RedisBackend

        endpoint = settings["cache.endpoint"]
        if not endpoint:
            raise ConfigError("cache.backend is redis but cache.endpoint is not set "
                              "(host:port, redis:// or rediss:// URL)")
        password = environ.get("ATTEST_REDIS_PASSWORD") or environ.get("REDIS_PASSWORD")
        return RedisBackend(endpoint, prefix=settings["cache.prefix"], timeout=timeout,
                            ttl=ttl, password=password or None, **bounds)
    if backend == "s3":
        from attest_cli.cache.backends.s3 import S3Backend

        bucket = settings["cache.bucket"]
        if not bucket:
            raise ConfigError("cache.backend is s3 but cache.bucket is not set")
        return S3Backend(bucket, prefix=settings["cache.prefix"],
                         region=settings["cache.region"] or None,
                         endpoint_url=settings["cache.endpoint_url"] or None, timeout=timeout,
                         **bounds)
    if backend == "reapi":
        return open_reapi(settings, timeout, bounds)
    return None


def open_reapi(settings: Settings, timeout: float, bounds: dict[str, Any]) -> CacheBackend:
    """The REAPI backend; a bad endpoint or a missing ``reapi`` extra is a config error."""
    endpoint = settings["cache.endpoint"]
    if not endpoint:
        raise ConfigError("cache.backend is reapi but cache.endpoint is not set "
                          "(grpc://host:port or grpcs://host[:port])")
    try:
        from attest_cli.cache.backends.reapi import ReapiBackend
        from attest_cli.reapi.channel import BadEndpoint, Endpoint, parse_target
        from attest_cli.reapi.errors import ReapiUnavailable
    except ImportError as exc:
        raise ConfigError(f"cache.backend: reapi needs the 'reapi' extra "
                          f"(pip install 'attest-cli[reapi]'): {exc}") from None
    except ReapiUnavailable as exc:
        raise ConfigError(f"cache.backend: {exc}") from None
    try:
        parse_target(endpoint)
    except BadEndpoint as exc:
        raise ConfigError(f"cache.endpoint: {exc}") from None
    return ReapiBackend(Endpoint(endpoint, instance=settings["cache.instance"],
                                 headers=dict(settings["cache.headers"]),
                                 tls_ca=settings["cache.tls_ca"] or None, timeout=timeout),
                        **bounds)


def build_cache(ctx: AppContext, settings: Settings, *, check_required: bool = True
                ) -> ContentCache:
    local = open_local(ctx, settings)
    remote_raw = open_remote(settings, ctx.environ)
    remote = GuardedBackend(remote_raw) if remote_raw is not None else None
    required = bool(settings["cache.required"])
    if remote is not None and required and check_required:
        from attest_cli.cache.backends.base import BackendUnavailable

        try:
            remote.ping()
        except BackendUnavailable as exc:
            remote.close()
            raise CacheUnavailable(f"cache.required is true and the {remote.name} cache is "
                                   f"unreachable: {exc}") from None
    index = StatIndex(ctx.state_dir / "cache-stat-index.json")
    return ContentCache(local=local, remote=remote,
                        remote_writable=settings["cache.mode"] == "read-write",
                        index=index, required=required,
                        max_entry_size=int(settings["cache.max_entry_size"]))


def settings_summary(settings: Settings) -> dict[str, Any]:
    return {k: settings[k] for k in ("cache.backend", "cache.dir", "cache.mode")}
