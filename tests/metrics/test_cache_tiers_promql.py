"""A lookup is one hit or one miss, for the tier that answered: proven with promtool.

A two-tier run (local over a real ``redis-server``): the first run fills Redis, the local
cache is wiped, the second run is answered by Redis for every step. The values scraped
from ``attest serve`` before and after each run go into ``promtool test rules`` with the
generated rule file and the dashboard's own hit-rate expression: over the window of the
second run they compute the hit rate the run report states (100%), never 1 in 3.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.metrics.helpers import get, samples, start_attest, stop
from tests.support import attest, free_port, require_binary, wait_for, write_pipeline

pytestmark = pytest.mark.integration

PIPELINE = """
name: tiers
cache: {{backend: redis, endpoint: '127.0.0.1:{port}'}}
steps:
  a:
    run: 'cat src/a.txt > a.out'
    inputs: [src/a.txt]
    outputs: [a.out]
  b:
    run: 'cat src/b.txt > b.out'
    inputs: [src/b.txt]
    outputs: [b.out]
  c:
    run: 'cat a.out b.out > c.out'
    needs: [a, b]
    outputs: [c.out]
"""
CACHE_SERIES = ("attest_cache_hits_total", "attest_cache_misses_total")


@pytest.fixture
def served(project: Path, redis_server: tuple[int, subprocess.Popen[bytes]]
           ) -> Iterator[tuple[Path, int]]:
    """The two-tier project and the port of an ``attest serve`` exposing its history."""
    redis_port, _ = redis_server
    write_pipeline(project, PIPELINE.format(port=redis_port))
    (project / "src").mkdir()
    (project / "src" / "a.txt").write_text("alpha\n")
    (project / "src" / "b.txt").write_text("beta\n")
    port = free_port()
    proc = start_attest(project, "serve", "--endpoint", f"127.0.0.1:{port}")
    try:
        assert wait_for(lambda: _scrape_ok(port), 20), stop(proc)
        yield project, port
    finally:
        stop(proc)


def _scrape_ok(port: int) -> bool:
    try:
        return get(f"http://127.0.0.1:{port}/metrics")[0] == 200
    except OSError:
        return False


def scrape(port: int) -> dict[str, float]:
    """The cache counters as Prometheus would scrape them from ``attest serve``."""
    code, text = get(f"http://127.0.0.1:{port}/metrics")
    assert code == 200, text
    return {k: v for k, v in samples(text).items() if k.startswith(CACHE_SERIES)}


def run(project: Path) -> dict:
    report = project / "report.json"
    proc = attest("run", "--report", str(report), cwd=project)
    assert proc.returncode == 0, proc.stderr
    return json.loads(report.read_text())


def lookups(report: dict) -> tuple[int, int]:
    """Hits and misses as the run report counts them (its per-backend ``cache`` rows)."""
    return (sum(row["hits"] for row in report["cache"].values()),
            sum(row["misses"] for row in report["cache"].values()))


def delta(after: dict[str, float], before: dict[str, float], prefix: str) -> float:
    return sum(v - before.get(k, 0.0) for k, v in after.items() if k.startswith(prefix))


def series_values(scrapes: list[dict[str, float]], repeat: int) -> list[dict[str, str]]:
    """promtool input series: each scrape held for ``repeat`` one-minute samples."""
    names = sorted({k for s in scrapes for k in s})
    out = []
    for name in names:
        values = []
        for s in scrapes:
            values += [str(s.get(name, 0.0))] * repeat
        out.append({"series": name.replace("}", ',instance="ci"}'), "values": " ".join(values)})
    return out


def test_redis_answers_after_a_local_miss_count_one_hit_each_and_promtool_agrees(
        served: tuple[Path, int], tmp_path: Path) -> None:
    project, port = served
    promtool = require_binary("promtool")
    before = scrape(port)
    first = run(project)
    assert {s["name"]: s["status"] for s in first["steps"]} == \
        {"a": "success", "b": "success", "c": "success"}
    assert lookups(first) == (0, 3) and first["cache_hit_rate"] == 0
    assert wait_for(lambda: scrape(port) != before, 20)
    filled = scrape(port)

    shutil.rmtree(project / ".attest" / "cache")  # a fresh runner: only Redis has the entries
    second = run(project)
    assert {s["name"]: s["status"] for s in second["steps"]} == \
        {"a": "cached", "b": "cached", "c": "cached"}
    assert {s["cache_backend"] for s in second["steps"]} == {"redis"}
    assert second["cache_hit_rate"] == 1.0
    assert lookups(second) == (3, 0)
    assert wait_for(lambda: scrape(port) != filled, 20)
    after = scrape(port)

    # the counters moved by exactly what each run report says: one count per lookup
    assert delta(filled, before, "attest_cache_misses_total") == 3
    assert delta(filled, before, "attest_cache_hits_total") == 0
    assert delta(after, filled, "attest_cache_hits_total") == 3
    assert delta(after, filled, "attest_cache_misses_total") == 0
    assert after.get('attest_cache_hits_total{backend="redis"}') == 3
    assert after.get('attest_cache_misses_total{backend="local"}', 0.0) == 0

    rules = tmp_path / "attest-rules.yml"
    assert attest("monitoring", "alerts", "--output", str(rules), cwd=project).returncode == 0
    board = json.loads(attest("monitoring", "dashboard", cwd=project).stdout)
    (panel,) = [p for p in board["panels"] if p["title"] == "Cache Hit Rate"]
    # Grafana fills $__rate_interval; promtool needs a real window
    overall = panel["targets"][0]["expr"].replace("$__rate_interval", "5m")
    by_backend = panel["targets"][1]["expr"].replace("$__rate_interval", "5m")
    # scrape after run 1 held from 0m to 9m, after run 2 from 10m: the 5m window ending at
    # 14m holds only the second run's lookups
    tests = {
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": series_values([filled, after], 10),
            "promql_expr_test": [
                {"expr": "attest:cache_hit_ratio:rate5m", "eval_time": "14m",
                 "exp_samples": [{"labels": "attest:cache_hit_ratio:rate5m", "value": 1}]},
                {"expr": overall, "eval_time": "14m", "exp_samples": [{"value": 1}]},
                {"expr": by_backend, "eval_time": "14m",
                 "exp_samples": [{"labels": '{backend="redis"}', "value": 1}]},
            ],
            "alert_rule_test": [
                {"alertname": "CachePerformanceDegraded", "eval_time": "19m",
                 "exp_alerts": []},
            ],
        }],
    }
    (tmp_path / "tiers-test.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    proc = subprocess.run([promtool, "test", "rules", "tiers-test.yml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
