"""Cache counters exist from the first scrape, at 0, for every configured backend.

Prometheus' ``rate()`` and ``increase()`` ignore a series' first sample: a hits counter
that first appears already at 1 never counts that first lookup, and a cache that only ever
misses never shows a hit rate, so ``CachePerformanceDegraded`` could never fire.
"""

from __future__ import annotations

import pytest

from attest_cli.metrics.exposition import SnapshotCollector
from attest_cli.metrics.tally import Tally

pytestmark = pytest.mark.unit


def _samples(collector: SnapshotCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in collector.collect() for s in family.samples}


def test_hits_and_misses_start_at_zero_for_every_configured_backend() -> None:
    collector = SnapshotCollector(Tally, "attest", sizes=lambda: {"local": 0, "redis": 0})
    samples = _samples(collector)
    for name in ("attest_cache_hits_total", "attest_cache_misses_total"):
        for backend in ("local", "redis"):
            assert samples[(name, (("backend", backend),))] == 0.0


def test_a_backend_with_only_misses_still_has_a_hits_series() -> None:
    tally = Tally()
    tally.inc("cache_misses_total", "demo", ("local",))
    samples = _samples(SnapshotCollector(lambda: tally, "attest", sizes=lambda: {"local": 0}))
    assert samples[("attest_cache_hits_total", (("backend", "local"),))] == 0.0
    assert samples[("attest_cache_misses_total", (("backend", "local"),))] == 1.0
