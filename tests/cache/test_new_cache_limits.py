"""End-of-run limits on a cache directory the run itself created: no walk unless over."""

from __future__ import annotations

import os
import time
from pathlib import Path

from attest_cli.cache import store as entries
from attest_cli.cache.backends.local import LocalBackend
from attest_cli.cache.limits import enforce_limits
from attest_cli.cache.manifest import Manifest, OutputFile
from attest_cli.config.layers import Settings, defaults
from attest_cli.digest import bytes_digest


def settings(max_size: int) -> Settings:
    s = defaults()
    s.set("cache.max_size", max_size, "test")
    return s


def store(local: LocalBackend, i: int, size: int) -> None:
    data = bytes([i]) * size
    digest = bytes_digest(data)
    entries.put_blob(local, digest, data)
    entries.put_manifest(local, Manifest(
        key=f"{i:064x}", step=f"s{i}", files=[OutputFile(path=f"o{i}", kind="file", mode=0o644,
                                                          digest=digest, size=size)],
        log_digest=bytes_digest(b""), log_size=0, exit_code=0, wall_seconds=0.0,
        created_at=time.time(), components={}))


def test_a_cache_this_run_created_under_the_limit_is_not_walked(tmp_path: Path) -> None:
    local = LocalBackend(tmp_path / "cache")
    assert local.created_here
    for i in range(3):
        store(local, i, 1000)
    assert enforce_limits(local, settings(10**6), stored=True) is None  # no prune ran
    assert (tmp_path / "cache" / ".last-prune").exists()  # counts as pruned today
    assert len(list(entries.entry_keys(local))) == 3


def test_a_new_cache_over_the_limit_is_still_pruned_to_it(tmp_path: Path) -> None:
    local = LocalBackend(tmp_path / "cache")
    for i in range(4):
        store(local, i, 10_000)
    assert local.written > 25_000
    result = enforce_limits(local, settings(25_000), stored=True)
    assert result is not None and result.entries_removed >= 2
    assert result.bytes_left <= 25_000


def test_an_existing_cache_is_pruned_for_age_once_a_day(tmp_path: Path) -> None:
    LocalBackend(tmp_path / "cache").ping()  # the directory is there before the run
    local = LocalBackend(tmp_path / "cache")
    assert not local.created_here
    store(local, 1, 100)
    old = time.time() - 400 * 86400
    for p in (tmp_path / "cache").rglob("*"):
        if p.is_file():
            os.utime(p, (old, old))
    s = settings(10**6)
    s.set("cache.retention_days", 30, "test")
    result = enforce_limits(local, s, stored=True)
    assert result is not None and result.entries_removed == 1
