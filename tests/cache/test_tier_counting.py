"""One lookup is one hit or one miss, for the tier that answered (local over a real Redis).

ContentCache in-process with a real ``redis-server`` as the remote tier; each decision is
also fed, as the scheduler's ``CacheChecked`` event, to the metric tally, and the tally
must say what the cache's own counts (the run report's ``cache``) say.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from attest_cli.cache.backends.guard import GuardedBackend
from attest_cli.cache.backends.local import LocalBackend
from attest_cli.cache.backends.redis import RedisBackend
from attest_cli.cache.content_cache import ContentCache
from attest_cli.cache.statindex import StatIndex
from attest_cli.engine.events import CacheChecked
from attest_cli.engine.interfaces import CacheDecision, StepContext
from attest_cli.engine.run_report import StepResult
from attest_cli.metrics.tally import Tally, account
from attest_cli.pipeline.model import Pipeline, Step
from tests.support import free_port

STEP = Step(name="build", run="cp src.txt out.txt", inputs=("src.txt",), outputs=("out.txt",))


def two_tier(local_dir: Path, endpoint: str) -> ContentCache:
    remote = GuardedBackend(RedisBackend(endpoint, timeout=2.0))
    return ContentCache(local=LocalBackend(local_dir), remote=remote, index=StatIndex(None))


def context(root: Path) -> StepContext:
    pipeline = Pipeline(name="p", path=root / "attest.yaml", root=root, steps={"build": STEP})
    return StepContext(run_id="r", pipeline=pipeline, step=STEP, env={"PATH": "/bin"},
                       workdir=root, upstream={})


def look(cache: ContentCache, root: Path, tally: Tally) -> CacheDecision:
    decision = cache.lookup(context(root))
    account(tally, CacheChecked(step="build", backend=decision.backend, hit=decision.hit,
                                key=decision.key, reason=decision.reason, duration=0.0),
            "p")
    return decision


def metric_counts(tally: Tally) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for (name, _pipeline, (backend,)), value in tally.counters.items():
        what = {"cache_hits_total": "hits", "cache_misses_total": "misses"}[name]
        out.setdefault(backend, {"hits": 0, "misses": 0})[what] += int(value)
    return out


def lookups(cache: ContentCache) -> dict[str, dict[str, int]]:
    return {b: {"hits": r["hits"], "misses": r["misses"]} for b, r in cache.counts.items()
            if r["hits"] or r["misses"]}


@pytest.mark.integration
def test_each_lookup_counts_once_for_the_tier_that_answered(
        tmp_path: Path, redis_server: tuple[int, subprocess.Popen[bytes]]) -> None:
    port, _ = redis_server
    root = tmp_path / "proj"
    root.mkdir()
    (root / "src.txt").write_text("v1\n")
    log = tmp_path / "build.log"

    # run 1: a miss in every tier is ONE miss, attributed to the last tier asked (redis)
    first, t1 = two_tier(tmp_path / "runner-a", f"127.0.0.1:{port}"), Tally()
    miss = look(first, root, t1)
    assert (miss.hit, miss.backend) == (False, "redis")
    (root / "out.txt").write_text("v1\n")
    log.write_text("copied\n")
    assert first.store(context(root), miss, StepResult(name="build", command=STEP.run,
                                                       exit_code=0), log).stored
    assert lookups(first) == {"redis": {"hits": 0, "misses": 1}} == metric_counts(t1)
    first.close()

    # run 2, a runner with an empty local cache: a local miss then a Redis hit is ONE hit
    second, t2 = two_tier(tmp_path / "runner-b", f"127.0.0.1:{port}"), Tally()
    hit = look(second, root, t2)
    assert (hit.hit, hit.backend) == (True, "redis")
    assert lookups(second) == {"redis": {"hits": 1, "misses": 0}} == metric_counts(t2)
    # the Redis hit filled the local tier: the next lookup is a local hit, still one count
    again = look(second, root, t2)
    assert (again.hit, again.backend) == (True, "local")
    assert lookups(second) == {"redis": {"hits": 1, "misses": 0},
                               "local": {"hits": 1, "misses": 0}} == metric_counts(t2)
    second.close()


@pytest.mark.integration
def test_an_unreachable_remote_after_a_local_miss_is_one_miss(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "src.txt").write_text("v1\n")
    cache, tally = two_tier(tmp_path / "cache", f"127.0.0.1:{free_port()}"), Tally()
    decision = look(cache, root, tally)
    assert (decision.hit, decision.backend) == (False, "redis")
    assert "redis unavailable" in (decision.reason or "")
    assert lookups(cache) == {"redis": {"hits": 0, "misses": 1}} == metric_counts(tally)
    cache.close()
