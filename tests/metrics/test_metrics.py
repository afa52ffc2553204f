"""Metrics end to end: textfile, live endpoint, ``attest serve``, Pushgateway, rules.

Every exposition attest produces goes through ``promtool check metrics``; the generated
rules through ``promtool check rules`` and ``promtool test rules`` on synthetic series.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.metrics.helpers import (
    PIPELINE,
    cache_counts,
    executed,
    get,
    history_runs,
    interrupted_run,
    live_pipeline,
    promtool_check_metrics,
    samples,
    start_attest,
    stop,
)
from tests.support import (
    attest,
    free_port,
    require_binary,
    serve_on_free_port,
    wait_for,
    wait_for_port,
    write_pipeline,
)

# -- helpers ---------------------------------------------------------------------------------






















@pytest.fixture
def demo(project: Path) -> Path:
    write_pipeline(project, PIPELINE)
    (project / "src.txt").write_text("v1\n")
    return project


@pytest.fixture
def serve_proc(demo: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    proc = start_attest(demo, "serve", "--endpoint", f"127.0.0.1:{port}")
    assert wait_for_port(port, 20), stop(proc)
    yield proc, port
    stop(proc)


# -- textfile --------------------------------------------------------------------------------
def test_metrics_file_holds_cumulative_history_values_and_passes_promtool(demo: Path) -> None:
    (demo / "m").mkdir()  # the collector's directory must exist (docs/security.md)
    assert attest("run", "--metrics-file", "m/attest.prom", cwd=demo).returncode == 0
    assert attest("run", "--metrics-file", "m/attest.prom", cwd=demo,
                  env={"FAIL": "1"}).returncode == 1
    text = (demo / "m" / "attest.prom").read_text()
    promtool_check_metrics(text)
    s = samples(text)
    assert s['attest_pipeline_executions_total{pipeline="demo",status="success"}'] == 1
    assert s['attest_pipeline_executions_total{pipeline="demo",status="failure"}'] == 1
    assert s['attest_pipeline_duration_seconds_count{pipeline="demo"}'] == 2
    step = 'attest_step_duration_seconds_count{pipeline="demo",status="%s",step="%s"}'
    assert s[step % ("success", "test")] == 1
    assert s[step % ("failure", "test")] == 1
    # build ran once (miss) then was replayed from the cache (hit): a replay is a cache hit,
    # not a step duration. Exact values are what the history recorded from the cache's events.
    hits, misses = cache_counts(demo)
    assert s.get('attest_cache_hits_total{backend="local"}', 0) == hits
    assert s.get('attest_cache_misses_total{backend="local"}', 0) == misses
    assert s[step % ("success", "build")] == executed(demo, "build", "success")
    assert s['attest_build_info{version="0.1.0"}'] == 1
    assert s['attest_pipeline_last_success_timestamp_seconds{pipeline="demo"}'] > 1e9
    assert s['attest_pipeline_last_completion_timestamp_seconds{pipeline="demo"}'] >= \
        s['attest_pipeline_last_success_timestamp_seconds{pipeline="demo"}']
    if hits + misses:
        assert s['attest_cache_size_bytes{backend="local"}'] > 0
    assert not list((demo / "m").glob(".*tmp")), "temp file left behind"


def test_unwritable_metrics_file_is_a_usage_error_before_the_run(demo: Path) -> None:
    (demo / "plain").write_text("a file, not a directory")
    proc = attest("run", "--metrics-file", "plain/attest.prom", cwd=demo)
    assert proc.returncode == 2 and "--metrics-file" in proc.stderr
    assert not (demo / "out.txt").exists()  # nothing ran
    proc = attest("run", "--metrics-file", ".", cwd=demo)
    assert proc.returncode == 2 and "is a directory" in proc.stderr


def test_namespace_setting_prefixes_every_metric(demo: Path) -> None:
    (demo / ".attest").mkdir(exist_ok=True)
    (demo / ".attest" / "config.yaml").write_text(
        "monitoring:\n  prometheus:\n    namespace: ci_runner\n")
    assert attest("run", "--metrics-file", "m.prom", cwd=demo).returncode == 0
    names = {k.split("{")[0] for k in samples((demo / "m.prom").read_text())}
    assert names and all(n.startswith("ci_runner_") for n in names), names
    (demo / ".attest" / "config.yaml").write_text(
        "monitoring:\n  prometheus:\n    namespace: 9bad-prefix\n")
    proc = attest("run", "--metrics-file", "m.prom", cwd=demo)
    assert proc.returncode == 2
    assert "monitoring.prometheus.namespace" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_verifications_of_runs_and_of_attest_verify_reach_the_metrics(project: Path) -> None:
    write_pipeline(project, """
        name: signed
        steps:
          build: {run: 'echo v1 > app.txt', outputs: [app.txt], cache: false}
    """)
    assert attest("keys", "generate", cwd=project).returncode == 0
    assert attest("run", "--sign", "--verify", cwd=project).returncode == 0
    (project / "app.txt").write_text("tampered\n")
    receipts = [str(p) for p in (project / ".attest" / "receipts").iterdir()]
    assert len(receipts) == 1
    assert attest("verify", *receipts, cwd=project).returncode == 1
    write_pipeline(project, "name: other\nsteps:\n  a: {run: 'true', cache: false}\n")
    assert attest("run", "--metrics-file", "m.prom", cwd=project).returncode == 0
    text = (project / "m.prom").read_text()
    promtool_check_metrics(text)
    s = samples(text)
    # one verification of each kind during the run, and again by `attest verify`
    assert s['attest_verifications_total{type="signature"}'] == 2
    assert s['attest_verifications_total{type="receipt"}'] == 2
    assert s['attest_verification_duration_seconds_count{type="receipt"}'] == 2
    assert s['attest_verification_failures_total{reason="hash_mismatch"}'] == 1
    (signed,) = [r for r in history_runs(project) if r["pipeline"] == "signed"]
    assert sorted((v["kind"], v["ok"]) for v in signed["verifications"]) == \
        [("receipt", True), ("signature", True)]


# -- live endpoint ---------------------------------------------------------------------------
def test_live_endpoint_serves_metrics_and_health_during_the_run(demo: Path) -> None:
    port = free_port()
    live_pipeline(demo, "demo", port)
    proc = start_attest(demo, "run")
    try:
        assert wait_for_port(port, 20)
        # `first` finished: its duration is already visible while `wait` still runs
        def first_seen() -> bool:
            return 'step="first"' in get(f"http://127.0.0.1:{port}/metrics")[1]
        assert wait_for(first_seen, 20)
        code, text = get(f"http://127.0.0.1:{port}/metrics")
        assert code == 200
        promtool_check_metrics(text)
        s = samples(text)
        first = 'attest_step_duration_seconds_count{pipeline="demo",status="success",step="first"}'
        assert s[first] == 1
        assert 'attest_pipeline_executions_total{pipeline="demo",status="success"}' not in s
        assert get(f"http://127.0.0.1:{port}/health/live") == (200, '{"status": "healthy"}\n')
        code, body = get(f"http://127.0.0.1:{port}/health/ready")
        assert code == 200 and '"history": {"status": "healthy"' in body
        (demo / "go").touch()
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
    finally:
        stop(proc)
    assert not wait_for_port(port, 0.2), "the live endpoint outlived the run"


def test_port_in_use_is_one_line_naming_port_and_key_for_serve(demo: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        served = attest("serve", "--endpoint", f"127.0.0.1:{port}", cwd=demo)
        assert served.returncode == 2
        assert f"port {port} is already in use" in served.stderr
        assert "--endpoint" in served.stderr and "Traceback" not in served.stderr
    # `attest run` with a busy port: tests/test_metrics_busy_port.py (a warning, not exit 2)


def test_bad_endpoint_value_is_a_config_error(demo: Path) -> None:
    proc = attest("serve", "--endpoint", "localhost", cwd=demo)
    assert proc.returncode == 2
    assert "--endpoint" in proc.stderr and "host:port" in proc.stderr


def test_endpoint_forms() -> None:
    from attest_cli.errors import ConfigError
    from attest_cli.metrics.http_server import parse_endpoint

    assert parse_endpoint(":9090", "k") == ("127.0.0.1", 9090)  # loopback unless exposed
    assert parse_endpoint("127.0.0.1:9100", "k") == ("127.0.0.1", 9100)
    assert parse_endpoint("[::1]:9100", "k") == ("::1", 9100)
    for bad in ("9090", "host:", "host:99999", ":http"):
        with pytest.raises(ConfigError, match=r"^k: "):
            parse_endpoint(bad, "k")


# -- attest serve ----------------------------------------------------------------------------
def test_serve_counts_runs_of_other_processes_and_stays_monotonic_across_restarts(
        demo: Path, serve_proc: tuple[subprocess.Popen[str], int]) -> None:
    proc, port = serve_proc
    url = f"http://127.0.0.1:{port}/metrics"
    key = 'attest_pipeline_executions_total{pipeline="demo",status="success"}'
    assert key not in samples(get(url)[1])
    for _ in range(2):
        assert attest("run", cwd=demo).returncode == 0
    text = get(url)[1]
    promtool_check_metrics(text)
    assert samples(text)[key] == 2
    assert samples(text)['attest_pipeline_executions_total{pipeline="demo",status="failure"}'] == 0
    stop(proc)
    assert attest("run", cwd=demo).returncode == 0  # while no exporter runs
    port2 = free_port()
    again = start_attest(demo, "serve", "--endpoint", f"127.0.0.1:{port2}")
    try:
        assert wait_for_port(port2, 20)
        text = get(f"http://127.0.0.1:{port2}/metrics")[1]
        assert samples(text)[key] == 3
        hits, misses = cache_counts(demo)
        assert samples(text).get('attest_cache_hits_total{backend="local"}', 0) == hits
        assert samples(text).get('attest_cache_misses_total{backend="local"}', 0) == misses
    finally:
        stop(again)


def test_serve_stops_cleanly_on_sigterm(serve_proc: tuple[subprocess.Popen[str], int]) -> None:
    proc, port = serve_proc
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert f"listening on http://127.0.0.1:{port}" in err
    assert "Traceback" not in err


# -- Pushgateway -----------------------------------------------------------------------------
@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[int]:
    binary = require_binary("prometheus-pushgateway")
    proc, port = serve_on_free_port(
        lambda port: [binary, f"--web.listen-address=127.0.0.1:{port}",
        # Debian's build persists to /var/lib/prometheus by default: one store per test
        f"--persistence.file={tmp_path / 'pushgateway.data'}"], cwd=tmp_path)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def test_each_run_pushes_cumulative_totals_grouped_by_pipeline_and_instance(
        demo: Path, pushgateway: int) -> None:
    env = {"ATTEST_MONITORING__PROMETHEUS__PUSHGATEWAY": f"http://127.0.0.1:{pushgateway}",
           "ATTEST_MONITORING__PROMETHEUS__JOB": "ci",
           "ATTEST_MONITORING__PROMETHEUS__INSTANCE": "runner-7"}
    assert attest("run", cwd=demo, env=env).returncode == 0
    assert attest("run", cwd=demo, env={**env, "FAIL": "1"}).returncode == 1
    assert attest("run", cwd=demo, env=env).returncode == 0
    text = get(f"http://127.0.0.1:{pushgateway}/metrics")[1]
    s = samples(text)
    group = 'instance="runner-7",job="ci",pipeline="demo"'
    # the gateway replaces a group on each push: these are totals, not the last run's 1
    assert s[f'attest_pipeline_executions_total{{{group},status="success"}}'] == 2
    assert s[f'attest_pipeline_executions_total{{{group},status="failure"}}'] == 1
    assert s[f'attest_pipeline_duration_seconds_count{{{group}}}'] == 3
    assert s[f'attest_pipeline_last_success_timestamp_seconds{{{group}}}'] > 1e9
    assert s[f'attest_pipeline_last_completion_timestamp_seconds{{{group}}}'] >= \
        s[f'attest_pipeline_last_success_timestamp_seconds{{{group}}}']
    hits, _misses = cache_counts(demo)
    assert s.get(f'attest_cache_hits_total{{backend="local",{group}}}', 0) == hits

    # an interrupted run pushes too (as a failure)
    (demo / "attest.yaml").write_text((demo / "attest.yaml").read_text().replace(
        """run: 'test -z "$FAIL"'""", """run: 'touch started; sleep 60'"""))
    assert interrupted_run(demo, env) == 130
    s = samples(get(f"http://127.0.0.1:{pushgateway}/metrics")[1])
    assert s[f'attest_pipeline_executions_total{{{group},status="failure"}}'] == 2
    assert s[f'push_time_seconds{{{group}}}'] > 0


def test_a_failed_push_is_one_warning_and_keeps_the_exit_code(demo: Path) -> None:
    closed = free_port()
    env = {"ATTEST_MONITORING__PROMETHEUS__PUSHGATEWAY": f"http://127.0.0.1:{closed}"}
    ok = attest("run", "--log-format", "text", cwd=demo, env=env)
    assert ok.returncode == 0
    warnings = [ln for ln in ok.stderr.splitlines() if "pushing metrics" in ln]
    assert len(warnings) == 1 and "WARN" in warnings[0], ok.stderr
    bad = attest("run", cwd=demo, env={**env, "FAIL": "1"})
    assert bad.returncode == 1
    runs = attest("history", "--format", "json", cwd=demo).stdout
    assert [r["status"] for r in yaml.safe_load(runs)] == ["failure", "success"]


# -- dashboard and rules ---------------------------------------------------------------------
def test_generated_rules_pass_promtool_and_compute_ratios(tmp_path: Path, project: Path) -> None:
    promtool = require_binary("promtool")
    rules = tmp_path / "attest-rules.yml"
    assert attest("monitoring", "alerts", "--output", str(rules), cwd=project).returncode == 0
    check = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    doc = yaml.safe_load(rules.read_text())
    alerts = {r["alert"]: r for g in doc["groups"] for r in g["rules"] if "alert" in r}
    assert alerts["PipelineFailureRate"]["for"] == "2m"
    assert alerts["PipelineFailureRate"]["annotations"]["summary"] == \
        "High pipeline failure rate detected"
    assert alerts["CachePerformanceDegraded"]["for"] == "5m"
    assert alerts["CachePerformanceDegraded"]["annotations"]["summary"] == \
        "Cache hit rate below threshold"
    tests = tmp_path / "attest-rules-test.yml"
    tests.write_text(RULE_TESTS)
    run = subprocess.run([promtool, "test", "rules", str(tests)], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr


# Synthetic series: one run per minute of each outcome (half the runs fail) for "half";
# 1 failure in 16 runs for "mostly" (below the 10% threshold); cache: 1 hit per 3 misses (0.25).
RULE_TESTS = """
rule_files: [attest-rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'attest_pipeline_executions_total{pipeline="half",status="success",instance="a"}'
        values: '0+1x20'
      - series: 'attest_pipeline_executions_total{pipeline="half",status="failure",instance="a"}'
        values: '0+1x20'
      - series: 'attest_pipeline_executions_total{pipeline="mostly",status="success",instance="a"}'
        values: '0+15x20'
      - series: 'attest_pipeline_executions_total{pipeline="mostly",status="failure",instance="a"}'
        values: '0+1x20'
      - series: 'attest_pipeline_executions_total{pipeline="never",status="success",instance="a"}'
        values: '0+2x20'
      - series: 'attest_cache_hits_total{backend="local",instance="a"}'
        values: '0+1x20'
      - series: 'attest_cache_misses_total{backend="local",instance="a"}'
        values: '0+3x20'
    promql_expr_test:
      - expr: attest:pipeline_success_ratio:rate5m
        eval_time: 10m
        exp_samples:
          - labels: 'attest:pipeline_success_ratio:rate5m{pipeline="half"}'
            value: 0.5
          - labels: 'attest:pipeline_success_ratio:rate5m{pipeline="mostly"}'
            value: 0.9375
          - labels: 'attest:pipeline_success_ratio:rate5m{pipeline="never"}'
            value: 1
      - expr: attest:pipeline_failure_ratio:rate5m
        eval_time: 10m
        exp_samples:
          - labels: 'attest:pipeline_failure_ratio:rate5m{pipeline="half"}'
            value: 0.5
          - labels: 'attest:pipeline_failure_ratio:rate5m{pipeline="mostly"}'
            value: 0.0625
          - labels: 'attest:pipeline_failure_ratio:rate5m{pipeline="never"}'
            value: 0
      - expr: attest:cache_hit_ratio:rate5m
        eval_time: 10m
        exp_samples:
          - labels: 'attest:cache_hit_ratio:rate5m'
            value: 0.25
    alert_rule_test:
      - alertname: PipelineFailureRate
        eval_time: 1m
        exp_alerts: []
      - alertname: PipelineFailureRate
        eval_time: 10m
        exp_alerts:
          - exp_labels: {pipeline: half, severity: warning}
            exp_annotations:
              summary: High pipeline failure rate detected
              description: 'half: 50% of runs failed over the last 5 minutes.'
      - alertname: CachePerformanceDegraded
        eval_time: 4m
        exp_alerts: []
      - alertname: CachePerformanceDegraded
        eval_time: 10m
        exp_alerts:
          - exp_labels: {severity: warning}
            exp_annotations:
              summary: Cache hit rate below threshold
              description: 'Step cache hit ratio is 25% over the last 5 minutes.'
"""


def test_dashboard_is_grafana_json_with_variables_and_the_seed_panels(project: Path) -> None:
    import json

    proc = attest("monitoring", "dashboard", cwd=project)
    assert proc.returncode == 0, proc.stderr
    dash = json.loads(proc.stdout)
    titles = [p["title"] for p in dash["panels"]]
    assert titles[:2] == ["Pipeline Success Rate", "Cache Hit Rate"]
    assert {"Pipeline Duration", "Step Duration (p95)", "Executions by Status",
            "Verification Failures by Reason", "Cache Size"} <= set(titles)
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["pipeline"]["query"]["query"] == \
        "label_values(attest_pipeline_executions_total, pipeline)"
    for panel in dash["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        for target in panel["targets"]:
            assert target["expr"].strip()
    success = dash["panels"][0]["targets"][0]["expr"]
    assert "sum by (pipeline)" in success and 'pipeline=~"$pipeline"' in success
