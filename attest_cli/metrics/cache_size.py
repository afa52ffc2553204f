"""How many bytes the step cache holds, for the ``cache_size_bytes`` gauge.

The local tier is measured on disk (``cache.dir``); a remote tier is asked for its size by
the cache package's backend. A measurement is reused for a few seconds, so 50 scrapers do
not walk the tree (or scan Redis) 50 times.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from attest_cli.config.layers import Settings
from attest_cli.context import AppContext

log = logging.getLogger("attest.metrics")


def directory_bytes(root: Path) -> int:
    """Total size of the regular files under ``root`` (0 when it does not exist)."""
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue  # removed while we walked (pruning, a concurrent run)
            total += st.st_size
    return total


def local_cache_sizes(ctx: AppContext, settings: Settings) -> Callable[[], dict[str, int]]:
    """A size source: ``{"local": bytes}`` when the cache is on and its directory exists."""
    root = ctx.path(str(settings["cache.dir"]))
    enabled = bool(settings["cache.enabled"])

    def measure() -> dict[str, int]:
        if not enabled or not root.is_dir():
            return {}
        return {"local": directory_bytes(root)}
    return measure


def cache_sizes(ctx: AppContext, settings: Settings) -> Callable[[], dict[str, int]]:
    """Every configured backend's size, asked of the cache backends themselves.

    The local tier is always measured; a remote one (redis, s3) is asked through the cache
    package's own backend (its ``size()``), and left out when it cannot answer: a gauge
    that is missing is honest, a zero would not be.
    """
    local = local_cache_sizes(ctx, settings)
    if not settings["cache.enabled"] or settings["cache.backend"] == "local":
        return local

    def measure() -> dict[str, int]:
        sizes = local()
        try:
            from attest_cli.cache.setup import open_remote
        except ImportError:
            return sizes
        try:
            remote = open_remote(settings, ctx.environ)
            if remote is not None:
                try:
                    sizes[remote.name] = int(remote.size())
                finally:
                    remote.close()
        except Exception as exc:  # unreachable remote, bad config: no gauge for it
            log.debug("cache size of the %s backend unknown: %s", settings["cache.backend"],
                      exc)
        return sizes
    return measure


class Reused:
    """Call ``source`` at most once per ``ttl`` seconds; concurrent callers share a result."""

    def __init__(self, source: Callable[[], dict[str, int]], ttl: float = 10.0) -> None:
        self.source = source
        self.ttl = ttl
        self._value: dict[str, int] = {}
        self._at = float("-inf")
        self._lock = threading.Lock()

    def __call__(self) -> dict[str, int]:
        with self._lock:
            if time.monotonic() - self._at >= self.ttl:
                self._value = self.source()
                self._at = time.monotonic()
            return dict(self._value)
