"""A real Prometheus scrapes ``attest serve`` while runs happen, then answers the dashboard's
own queries (and evaluates the generated rules) with the values the run history implies.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

from attest_cli.metrics import promql
from attest_cli.metrics.dashboards import panels
from tests.metrics.helpers import PIPELINE, cache_counts, get, start_attest, stop
from tests.support import (
    attest,
    free_port,
    require_binary,
    wait_for,
    wait_for_port,
    write_pipeline,
)


def query(prom: int, expr: str) -> list[dict]:
    url = f"http://127.0.0.1:{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    code, body = get(url)
    if code == 503:  # Prometheus listens before its storage is ready ("Service Unavailable")
        return []
    doc = json.loads(body)
    assert code == 200 and doc["status"] == "success", (expr, body)
    return list(doc["data"]["result"])


def value(prom: int, expr: str, **labels: str) -> float | None:
    for item in query(prom, expr):
        if all(item["metric"].get(k) == v for k, v in labels.items()):
            return float(item["value"][1])
    return None


def dashboard_queries() -> dict[str, list[str]]:
    """Panel title -> its queries, with Grafana's ``$pipeline`` set to "All" (``.*``) and
    ``$__rate_interval`` to the rules' window."""
    return {p["title"]: [t["expr"].replace("$pipeline", ".*")
                         .replace("$__rate_interval", promql.WINDOW) for t in p["targets"]]
            for p in panels("attest")}


@pytest.mark.integration
def test_prometheus_scraping_serve_answers_the_dashboard_queries(
        project: Path, tmp_path: Path) -> None:
    prometheus = require_binary("prometheus")
    write_pipeline(project, PIPELINE)
    src = project / "src.txt"
    src.write_text("v1\n")
    # Before scraping starts: one success (build misses) and one failure (build hits), so
    # every series exists, with a non-zero value, from Prometheus' first scrape on.
    assert attest("run", cwd=project).returncode == 0
    assert attest("run", cwd=project, env={"FAIL": "1"}).returncode == 1
    hits0, misses0 = cache_counts(project)

    serve_port, prom_port = free_port(), free_port()
    rules = tmp_path / "attest-rules.yml"
    assert attest("monitoring", "alerts", "-o", str(rules), cwd=project).returncode == 0
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [{rules}]
scrape_configs:
  - job_name: attest
    static_configs: [{{targets: ["127.0.0.1:{serve_port}"]}}]
""")
    serve = start_attest(project, "serve", "--endpoint", f"127.0.0.1:{serve_port}")
    prom = subprocess.Popen([prometheus, f"--config.file={config}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path)
    try:
        assert wait_for_port(serve_port, 20), stop(serve)
        assert wait_for_port(prom_port, 30), "prometheus did not start"
        ex = 'attest_pipeline_executions_total{pipeline="demo",status="%s"}'
        scraped = f"count_over_time({ex % 'success'}[1m])"
        assert wait_for(lambda: (value(prom_port, scraped) or 0) >= 2, 30), \
            "prometheus is not scraping attest serve"

        # while Prometheus scrapes: two successes and two failures, one of them after an
        # input change (a cache miss)
        for i, fail in enumerate(["", "1", "", "1"]):
            if i == 2:
                src.write_text("v2\n")
            assert attest("run", cwd=project, env={"FAIL": fail} if fail else None
                          ).returncode == (1 if fail else 0)
        hits, misses = cache_counts(project)
        assert wait_for(lambda: value(prom_port, ex % "success") == 3
                        and value(prom_port, ex % "failure") == 3, 30)
        time.sleep(2.5)  # a few more scrapes of the final values

        q = dashboard_queries()
        for exprs in q.values():  # every panel query is valid PromQL, with data or not
            for expr in exprs:
                query(prom_port, expr)

        # 2 of the 4 runs in the window succeeded
        assert value(prom_port, q["Pipeline Success Rate"][0], pipeline="demo") == \
            pytest.approx(0.5, abs=1e-9)
        # the seed's expression, for contrast: it says 1 whenever anything succeeded
        seed = ('rate(attest_pipeline_executions_total{status="success"}[5m]) / '
                "rate(attest_pipeline_executions_total[5m])")
        assert value(prom_port, seed, pipeline="demo") == 1

        if (hits + misses) - (hits0 + misses0) > 0 and hits0 and misses0:
            expected = (hits - hits0) / ((hits - hits0) + (misses - misses0))
            assert value(prom_port, q["Cache Hit Rate"][0]) == pytest.approx(expected, abs=1e-9)
            assert value(prom_port, q["Cache Hit Rate"][1], backend="local") == \
                pytest.approx(expected, abs=1e-9)
            assert (value(prom_port, q["Cache Size"][0], backend="local") or 0) > 0

        p50 = value(prom_port, q["Pipeline Duration"][0], pipeline="demo")
        assert p50 is not None and 0 < p50 <= 10  # these runs take well under 10 s
        step_p95 = value(prom_port, q["Step Duration (p95)"][0], pipeline="demo", step="test")
        assert step_p95 is not None and 0 < step_p95 <= 10
        since = value(prom_port, q["Time Since Last Success"][0], pipeline="demo")
        assert since is not None and 0 <= since < 300
        by_status = query(prom_port, q["Executions by Status"][0])
        assert {(r["metric"]["pipeline"], r["metric"]["status"]) for r in by_status} == \
            {("demo", "success"), ("demo", "failure")}

        # the generated rules loaded and evaluate to the same ratio; the alert is pending
        # (its `for: 2m` has not elapsed)
        assert wait_for(lambda: value(prom_port, "attest:pipeline_failure_ratio:rate5m",
                                      pipeline="demo") == pytest.approx(0.5, abs=1e-9), 15)
        assert wait_for(lambda: alert_state(prom_port, "PipelineFailureRate", "demo")
                        == "pending", 15)
    finally:
        stop(serve)
        prom.terminate()
        try:
            prom.wait(15)
        except subprocess.TimeoutExpired:
            prom.kill()


def alert_state(prom_port: int, name: str, pipeline: str) -> str | None:
    alerts = json.loads(get(f"http://127.0.0.1:{prom_port}/api/v1/alerts")[1])
    for alert in alerts["data"]["alerts"]:
        if alert["labels"]["alertname"] == name and alert["labels"].get("pipeline") == pipeline:
            return str(alert["state"])
    return None
