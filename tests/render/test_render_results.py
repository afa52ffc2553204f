"""Each command's renderers, fed a value in process: the exact text they print."""

from __future__ import annotations

import json
from typing import Any

from attest_cli.attestation.verify import Check, VerificationResult
from attest_cli.bench.result import BenchmarkResult
from attest_cli.cache.predict import Prediction
from attest_cli.health.checks import CheckResult, HealthReport
from attest_cli.metrics.history import RunRecord
from attest_cli.render.figures import duration
from attest_cli.render.plan import Plan
from attest_cli.render.registry import (
    BENCHMARK_RESULT,
    CACHE_STATS,
    HEALTH,
    HISTORY,
    RUN_PLAN,
    STORED_RESULTS,
    VERIFICATION,
)
from attest_cli.runner.service import PlannedStep


def test_durations_read_the_same_in_progress_views_and_history() -> None:
    assert [duration(s) for s in (0.0421, 3.14159, 125.0)] == ["42ms", "3.14s", "2m05.0s"]


def test_verification_text_escapes_names_and_ends_with_the_verdict() -> None:
    results = [VerificationResult("ok.yaml", "receipt", [Check("signature", "ok", "by k1")]),
               VerificationResult("bad\n[OK] x.yaml", "dsse",
                                  [Check("files", "fail", "a.txt changed", "files")])]
    assert VERIFICATION.render("text", results) == (
        "ok.yaml\n  [OK]   signature: by k1\n"
        "bad\\n[OK] x.yaml (in-toto DSSE)\n  [FAIL] files: a.txt changed\n"
        "FAILED: 1 of 2 receipt(s) did not verify\n")
    doc = json.loads(VERIFICATION.render("json", results))
    assert doc["ok"] is False and doc["receipts"][1]["reasons"] == ["files"]


def _record(**over: object) -> RunRecord:
    base = dict(run_id="r1", pipeline="demo", status="success", exit_code=0,
                started_at=0.0, finished_at=2.5, duration_seconds=2.5, hostname="h",
                steps_total=3, steps_success=3, cache={"local": {"hits": 2, "misses": 1}})
    base.update(over)
    return RunRecord(**base)  # type: ignore[arg-type]


def test_history_table_aligns_columns_and_json_adds_cache_totals() -> None:
    records = [_record(), _record(run_id="r2-long", status="failure", duration_seconds=None,
                                  cache={}, verifications=[{"ok": True}, {"ok": False}])]
    assert HISTORY.render("table", records).splitlines() == [
        "RUN ID   PIPELINE  STATUS   STARTED (UTC)        DURATION  STEPS  CACHE    VERIFY",
        "r1       demo      success  1970-01-01 00:00:00  2.50s     3/3    2/3 hit  -",
        "r2-long  demo      failure  1970-01-01 00:00:00  -         3/3    -        1/2 ok"]
    assert HISTORY.render("table", []) == "no runs recorded yet\n"
    rows = json.loads(HISTORY.render("json", records))
    assert (rows[0]["cache_hits"], rows[0]["cache_lookups"]) == (2, 3)


def test_health_text_pads_names_and_escapes_plug_in_details() -> None:
    report = HealthReport("degraded", {"cache": CheckResult("healthy", "ok", 1.25),
                                       "plug\x1b": CheckResult("degraded", "slow\nline", 30)})
    assert HEALTH.render("text", report) == (
        "degraded\n  cache     healthy    ok  (1.2 ms)\n"
        "  plug\\x1b  degraded   slow\\nline  (30.0 ms)\n")
    assert json.loads(HEALTH.render("json", report))["checks"]["cache"]["duration_ms"] == 1.25


def test_cache_stats_table_in_decimal_units_and_says_why_a_backend_is_missing() -> None:
    rows = [{"backend": "local", "entries": 4, "bytes": 1_500_000, "hits": 3, "misses": 1,
             "hit_rate": 0.75, "error": None},
            {"backend": "redis", "entries": 0, "bytes": 0, "hits": 0, "misses": 0,
             "hit_rate": None, "error": "refused"}]
    assert CACHE_STATS.render("table", rows) == (
        "backend   entries       size   hits  misses  hit rate\n"
        "local           4     1.5 MB      3       1     75.0%\n"
        "redis           0        0 B      0       0         -\n"
        "  (redis unavailable: refused)\n")
    assert json.loads(CACHE_STATS.render("json", rows)) == {"backends": rows}


def test_the_dry_run_plan_counts_predictions() -> None:
    plan = Plan("demo", [PlannedStep("build", "make", [], 0, True, None,
                                     Prediction("build", "cached", backend="local")),
                         PlannedStep("test", "pytest", ["build"], 1, False, 30.0)])
    assert RUN_PLAN.render("text", plan) == (
        "demo: 2 step(s) planned, 1 would run, 1 cached (dry run, nothing executed)\n"
        "  [1] build: make  -> cached (local)\n"
        "  [2] test: pytest  needs: build  (cache off, timeout 30s)\n")
    doc = json.loads(RUN_PLAN.render("json", plan))
    assert (doc["would_run"], doc["cached"], doc["steps"][1]["needs"]) == (1, 1, ["build"])
    assert doc["steps"][0] == {  # the prediction nested as its fields, as asdict gave it
        "name": "build", "command": "make", "needs": [], "level": 0, "cache": True,
        "timeout": None, "prediction": {"step": "build", "status": "cached",
                                        "backend": "local", "reason": None, "key": None}}


def _benchmark() -> BenchmarkResult:
    samples = {"total": {m: [1.0, 1.1, 1.2] for m in ("wall", "cpu", "rss")},
               "steps": {"fetch": {m: [0.5, 0.6, 0.7] for m in ("wall", "cpu", "rss")}}}
    return BenchmarkResult(label="v1", created_at="2026-01-01T00:00:00Z",
                           pipeline={"name": "demo"}, settings={"cache": "cold", "warmup": 1},
                           environment={"hostname": "h", "cpu_count": 2, "python": "3.11"},
                           samples=samples, warnings=["few iterations"])


def test_benchmark_markdown_names_the_metric_given_as_an_option() -> None:
    text = BENCHMARK_RESULT.render("markdown", _benchmark(), metric="rss", color=False,
                                   width=100)
    assert text.splitlines()[0] == ("**v1: pipeline 'demo', 3 iterations after 1 warm-up, cold "
                                    "cache; h, 2 CPUs, Python 3.11**")
    assert "| `fetch` | 0.0 MiB ± 0.0 MiB |" in text
    assert text.endswith("> warning: few iterations\n")


def test_benchmark_table_is_plain_without_colour_and_fits_the_width() -> None:
    text = BENCHMARK_RESULT.render("table", _benchmark(), metric="wall", color=False, width=90)
    assert "\x1b[" not in text
    assert max(len(line) for line in text.splitlines()) <= 90
    assert "wall (per iteration)" in text and "warning: few iterations" in text
    coloured = BENCHMARK_RESULT.render("table", _benchmark(), color=True, width=90)
    assert "\x1b[" in coloured


def test_stored_results_say_so_when_there_are_none() -> None:
    assert STORED_RESULTS.render("table", []) == (
        "no stored benchmark results (attest benchmark pipeline stores one)\n")
    rows = [{"label": "broken", "path": "x.json", "error": "bad JSON"}]
    assert "unreadable: bad JSON" in STORED_RESULTS.render("table", rows, color=False,
                                                            width=120)
    assert json.loads(STORED_RESULTS.render("json", rows)) == rows


def test_the_run_summary_line_and_job_summary_escape_names(
        run_report_data: dict[str, Any]) -> None:
    from attest_cli.engine.run_report import RunReport
    from attest_cli.render.run_summary import markdown_summary, summary_line

    run_report_data["pipeline"] = "de\x1bmo"
    report = RunReport.from_dict(run_report_data)
    assert summary_line(report) == "de\\x1bmo: success in 3.00s — 2 success, 1 skipped (run r1)"
    assert markdown_summary(report).splitlines()[:5] == [
        "### attest: de\\x1bmo — success", "", "| step | status | duration | exit | cache |",
        "|---|---|---:|---:|---|", "| build | ✓ success | 2.00s |  |  |"]


def test_the_dag_drawings_mark_the_critical_path_by_durations_or_step_count() -> None:
    from pathlib import Path

    from attest_cli.pipeline.model import Pipeline, Step
    from attest_cli.render.pipeline_graph import Drawing
    from attest_cli.render.registry import PIPELINE_GRAPH

    p = Pipeline("demo", Path("attest.yaml"), Path("."), {
        "fetch": Step("fetch", "curl"), "build": Step("build", "make", needs=("fetch",)),
        "lint": Step("lint", "ruff"), "test-all": Step("test-all", "pytest",
                                                       needs=("build", "lint"))})
    by_count = PIPELINE_GRAPH.render("ascii", Drawing(p))
    assert by_count.splitlines()[-1] == "critical path (*): fetch -> build -> test-all  (3 steps)"
    timed = Drawing(p, {"fetch": 0.5, "build": 65.0, "lint": 80.0, "test-all": 2.0})
    assert PIPELINE_GRAPH.render("ascii", timed).splitlines()[-1] == \
        "critical path (*): lint -> test-all  (1m22s)"
    assert PIPELINE_GRAPH.render("mermaid", Drawing(p)).splitlines()[5:8] == [
        "    s_fetch ==> s_build", "    s_build ==> s_test_all", "    s_lint --> s_test_all"]
    assert '    "lint" -> "test-all" [color="red" penwidth=2];' in \
        PIPELINE_GRAPH.render("dot", timed)
    doc = json.loads(PIPELINE_GRAPH.render("json", timed))
    assert (doc["critical_path"], doc["weight_unit"]) == (["lint", "test-all"], "seconds")


def test_configuration_hides_secrets_and_credentials_in_urls() -> None:
    from attest_cli.config.layers import Settings
    from attest_cli.render.config import ShownSettings
    from attest_cli.render.registry import CONFIG_SETTINGS

    settings = Settings(values={"cache.endpoint": "redis://:hunter2@h:6379/0",
                                "tracing.exporter.headers": {"auth": "t0ken"}},
                        origins={"cache.endpoint": "project", "tracing.exporter.headers": "env"})
    text = CONFIG_SETTINGS.render("text", ShownSettings(settings, origin=True))
    assert text == ("cache.endpoint = redis://***@h:6379/0    # project\n"
                    "tracing.exporter.headers = <set>    # env\n")
    assert json.loads(CONFIG_SETTINGS.render("json", ShownSettings(settings))) == {
        "cache.endpoint": "redis://***@h:6379/0"}
