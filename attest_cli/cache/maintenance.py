"""Cache upkeep behind ``attest cache stats|verify|clear|prune`` and the end of a run.

Eviction works on entries, least recently used first (a read touches an entry), and frees
a blob only when no remaining entry names it. Orphan blobs (no entry names them) are
removed only when older than an hour: a concurrent run writes its blobs before its
manifest, and must not lose them in between.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attest_cli.cache import store as entries
from attest_cli.cache.backends.base import CacheBackend, StoredObject
from attest_cli.cache.backends.local import LocalBackend
from attest_cli.cache.manifest import CorruptEntry

log = logging.getLogger("attest.cache")

ORPHAN_GRACE_SECONDS = 3600.0


@dataclass
class PruneResult:
    entries_removed: int = 0
    blobs_removed: int = 0
    bytes_freed: int = 0
    bytes_left: int = 0


@dataclass
class _Inventory:
    entries: dict[str, StoredObject] = field(default_factory=dict)
    blobs: dict[str, StoredObject] = field(default_factory=dict)
    refs: dict[str, set[str]] = field(default_factory=dict)  # entry key -> blob object keys
    corrupt: list[str] = field(default_factory=list)


def _inventory(backend: CacheBackend) -> _Inventory:
    inv = _Inventory()
    for obj in backend.objects(entries.BLOBS):
        inv.blobs[obj.key] = obj
    for obj in backend.objects(entries.ENTRIES):
        key = obj.key[len(entries.ENTRIES):]
        inv.entries[key] = obj
        try:
            manifest = entries.load_manifest(backend, key, touch=False)
        except CorruptEntry:
            manifest = None
        if manifest is None:
            inv.corrupt.append(key)
            inv.refs[key] = set()
            continue
        inv.refs[key] = {entries.blob_key(d) for d in manifest.blob_digests}
    return inv


def prune(backend: CacheBackend, *, max_size: int | None, retention_days: int,
          now: float | None = None) -> PruneResult:
    """Drop entries unused for ``retention_days`` (0: no age limit), then the least recently
    used until the cache fits ``max_size``; then blobs no entry names."""
    now = now or time.time()
    inv = _inventory(backend)
    result = PruneResult()
    total = sum(o.size for o in inv.entries.values()) + sum(o.size for o in inv.blobs.values())
    counts: dict[str, int] = {}
    for blobs in inv.refs.values():
        for b in blobs:
            counts[b] = counts.get(b, 0) + 1
    doomed_blobs: set[str] = set()

    def drop(key: str) -> None:
        nonlocal total
        backend.delete(entries.entry_key(key))
        result.entries_removed += 1
        total -= inv.entries[key].size
        result.bytes_freed += inv.entries[key].size
        for b in inv.refs.get(key, ()):
            counts[b] -= 1
            if counts[b] == 0 and b in inv.blobs:
                doomed_blobs.add(b)
                total -= inv.blobs[b].size
                result.bytes_freed += inv.blobs[b].size

    cutoff = now - retention_days * 86400 if retention_days > 0 else None
    by_age = sorted(inv.entries.items(), key=lambda kv: kv[1].last_used)
    kept = []
    for key, obj in by_age:
        if key in inv.corrupt or (cutoff is not None and obj.last_used < cutoff):
            drop(key)
        else:
            kept.append(key)
    if max_size is not None:
        for key in kept:
            if total <= max_size:
                break
            drop(key)
    for b, obj in inv.blobs.items():
        if b not in counts and now - obj.last_used > ORPHAN_GRACE_SECONDS and \
                b not in doomed_blobs:
            doomed_blobs.add(b)
            total -= obj.size
            result.bytes_freed += obj.size
    for b in doomed_blobs:
        backend.delete(b)
    result.blobs_removed = len(doomed_blobs)
    if isinstance(backend, LocalBackend):
        backend.table.give_back_space()
        for tmp in backend.stale_temp_files():
            with contextlib.suppress(OSError):
                tmp.unlink()
    result.bytes_left = max(0, total)
    return result


@dataclass
class BackendStats:
    backend: str
    entries: int
    bytes: int
    hits: int = 0
    misses: int = 0
    error: str | None = None

    @property
    def hit_rate(self) -> float | None:
        looked = self.hits + self.misses
        return round(self.hits / looked, 4) if looked else None

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "entries": self.entries, "bytes": self.bytes,
                "hits": self.hits, "misses": self.misses, "hit_rate": self.hit_rate,
                "error": self.error}


def backend_stats(backend: CacheBackend) -> BackendStats:
    """Entries counted from the listing; bytes from the backend (Redis chunks included)."""
    n_entries = sum(1 for _ in backend.objects(entries.ENTRIES))
    return BackendStats(backend=backend.name, entries=n_entries, bytes=backend.size())


def history_counts(history: Path) -> dict[str, dict[str, int]]:
    """Hits and misses per backend: the run history's cumulative ``cache_hits_total`` and
    ``cache_misses_total`` (every pipeline's), the same totals the metrics expose.

    One indexed query over a handful of rows, whatever the number of runs: stats used to
    parse every stored run report. The file is opened read-only and never created; a
    history that cannot be read counts nothing, with one warning."""
    import sqlite3

    totals: dict[str, dict[str, int]] = {}
    if not history.is_file():
        return totals
    try:
        conn = sqlite3.connect(f"{history.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            rows = conn.execute(
                "SELECT name, labels, SUM(value) FROM series WHERE name IN "
                "('cache_hits_total', 'cache_misses_total') GROUP BY name, labels").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        log.warning("cache stats: could not read the run history %s: %s", history, exc)
        return totals
    for name, labels, value in rows:
        try:
            (backend,) = json.loads(labels)
        except (ValueError, TypeError):
            continue
        acc = totals.setdefault(str(backend), {"hits": 0, "misses": 0})
        acc["hits" if name == "cache_hits_total" else "misses"] += int(value)
    return totals


@dataclass
class VerifyProblem:
    backend: str
    key: str
    problems: list[str]
    repaired: bool = False


def verify(checks: Iterable[tuple[CacheBackend, bool]]) -> tuple[int, list[VerifyProblem]]:
    """Check every entry of each ``(backend, repair)``; where ``repair``, delete the broken
    ones (and bad blobs). A read-only remote is checked with ``repair`` False."""
    checked = 0
    found: list[VerifyProblem] = []
    for backend, repair in checks:
        for key in list(entries.entry_keys(backend)):
            checked += 1
            problems = entries.verify_entry(backend, key, repair=repair)
            if problems:
                found.append(VerifyProblem(backend=backend.name, key=key, problems=problems,
                                           repaired=repair))
                if repair:
                    entries.delete_entry(backend, key)
    return checked, found


def clear(backend: CacheBackend) -> int:
    """Delete every object of the backend (under its prefix); returns how many."""
    n = 0
    for obj in list(backend.objects()):
        backend.delete(obj.key)
        n += 1
    if isinstance(backend, LocalBackend):
        backend.table.clear()  # rows no listing shows (planted, oversized) and moved files
    return n
