"""End-of-run limits on a cache directory the run itself created: no walk unless over."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from attest_cli.cache import store as entries
from attest_cli.cache.backends.local import LocalBackend
from attest_cli.cache.limits import enforce_limits
from attest_cli.cache.manifest import Manifest, OutputFile
from attest_cli.config.layers import Settings, defaults
from attest_cli.digest import bytes_digest
from tests.support import write_cache_entry


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
    local.flush()  # the row written (it waits in memory up to 20 ms)
    old = time.time() - 400 * 86400
    for p in (tmp_path / "cache" / "blobs").rglob("*"):
        if p.is_file():
            os.utime(p, (old, old))
    write_cache_entry(tmp_path / "cache", f"{1:064x}", used=old)
    s = settings(10**6)
    s.set("cache.retention_days", 30, "test")
    result = enforce_limits(local, s, stored=True)
    assert result is not None and result.entries_removed == 1


def test_an_existing_cache_is_measured_by_its_ledger_not_walked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Between daily prunes, a run that stores adds what it wrote to the ledger the last
    prune left; only when that says "over the limit" is the cache walked and pruned."""
    first = LocalBackend(tmp_path / "cache")
    store(first, 1, 10_000)
    assert enforce_limits(first, settings(35_000), stored=True) is None  # created here

    def walked() -> int:
        raise AssertionError("the cache was walked")

    for i in (2, 3):  # later runs in the same, existing cache: still under the limit
        local = LocalBackend(tmp_path / "cache")
        assert not local.created_here
        store(local, i, 10_000)
        monkeypatch.setattr(local, "size", walked)
        assert enforce_limits(local, settings(35_000), stored=True) is None
    monkeypatch.undo()
    local = LocalBackend(tmp_path / "cache")
    store(local, 4, 10_000)  # the ledger now says ~40 KB: over, so a real prune
    result = enforce_limits(local, settings(35_000), stored=True)
    assert result is not None and result.entries_removed >= 1
    assert result.bytes_left <= 35_000
    assert json.loads((tmp_path / "cache" / ".size").read_text()) == {"bytes": result.bytes_left}


def test_a_missing_or_damaged_ledger_is_one_walk(tmp_path: Path) -> None:
    LocalBackend(tmp_path / "cache").ping()
    local = LocalBackend(tmp_path / "cache")
    store(local, 1, 10_000)
    (tmp_path / "cache" / ".last-prune").touch()  # pruned today: only the size matters
    (tmp_path / "cache" / ".size").write_text("not json")
    assert enforce_limits(local, settings(5_000), stored=True) is not None  # walked: over
    (tmp_path / "cache" / ".size").unlink()
    local = LocalBackend(tmp_path / "cache")
    store(local, 2, 1_000)
    assert enforce_limits(local, settings(10**6), stored=True) is None
    assert json.loads((tmp_path / "cache" / ".size").read_text())["bytes"] == local.size()
