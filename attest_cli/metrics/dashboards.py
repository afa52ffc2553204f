"""``attest monitoring dashboard``: the Grafana dashboard (JSON model, Grafana 10+).

The data source is a dashboard variable (``$datasource``) so the file imports anywhere, and
``$pipeline`` (multi-select, "All" = ``.*``) filters every per-pipeline panel. The seed's
two panels come first, with their expressions corrected (see :mod:`promql`).

The model is what ``@grafana/schema``'s ``Dashboard`` type allows (a test type-checks it with
``tsc``): the data source variable has no ``current`` (Grafana selects the default Prometheus
data source), variables carry no legacy ``definition``, and ``rate()`` windows are Grafana's
``$__rate_interval`` (at least four scrape intervals, so a rate never lacks samples).
"""

from __future__ import annotations

from typing import Any

from attest_cli.metrics import promql
from attest_cli.metrics.exposition import full_name

TITLE = "ATTEST Pipeline Monitoring"
PIPELINE = 'pipeline=~"$pipeline"'
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"


def _target(expr: str, legend: str, ref: str) -> dict[str, Any]:
    return {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": ref,
            "range": True, "instant": False}


def _panel(pid: int, title: str, kind: str, targets: list[dict[str, Any]], *, unit: str,
           x: int, y: int, w: int = 12, h: int = 8, description: str = "",
           minmax: tuple[float, float] | None = None) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit}
    if minmax:
        defaults["min"], defaults["max"] = minmax
    panel: dict[str, Any] = {
        "id": pid, "title": title, "type": kind, "datasource": DATASOURCE,
        "description": description, "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": targets, "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {},
    }
    if kind == "stat":
        panel["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                              "values": False},
                            "colorMode": "value", "graphMode": "area", "textMode": "auto"}
    return panel


def panels(ns: str) -> list[dict[str, Any]]:
    """Every panel with its queries (the tests run these very queries against Prometheus)."""
    q = promql
    ex = full_name(ns, "pipeline_executions_total")
    return [
        _panel(1, "Pipeline Success Rate", "stat",
               [_target(q.run_ratio(ns, "success", PIPELINE, RATE), "{{pipeline}}", "A")],
               unit="percentunit", minmax=(0, 1), x=0, y=0,
               description="Successful runs over all runs of each pipeline (rate interval)."),
        _panel(2, "Cache Hit Rate", "stat",
               [_target(q.cache_hit_ratio(ns, RATE), "all backends", "A"),
                _target(q.cache_hit_ratio(ns, RATE, by="backend"), "{{backend}}", "B")],
               unit="percentunit", minmax=(0, 1), x=12, y=0,
               description="Step cache hits over lookups (rate interval)."),
        _panel(3, "Pipeline Duration", "timeseries",
               [_target(q.duration_quantile(ns, "pipeline_duration_seconds", p, "pipeline",
                                            PIPELINE, RATE), f"p{int(p * 100)} {{{{pipeline}}}}", r)
                for p, r in ((0.5, "A"), (0.95, "B"), (0.99, "C"))],
               unit="s", x=0, y=8),
        _panel(4, "Step Duration (p95)", "timeseries",
               [_target(q.duration_quantile(ns, "step_duration_seconds", 0.95,
                                            "pipeline, step", PIPELINE, RATE),
                        "{{pipeline}} / {{step}}", "A")],
               unit="s", x=12, y=8),
        _panel(5, "Executions by Status", "timeseries",
               [_target(f"sum by (pipeline, status) (increase({ex}{{{PIPELINE}}}[5m]))",
                        "{{pipeline}} {{status}}", "A")],
               unit="short", x=0, y=16,
               description="Runs finished in the last 5 minutes, by outcome."),
        _panel(6, "Verification Failures by Reason", "timeseries",
               [_target(f"sum by (reason) (increase("
                        f"{full_name(ns, 'verification_failures_total')}[1h]))",
                        "{{reason}}", "A")],
               unit="short", x=12, y=16),
        _panel(7, "Cache Size", "timeseries",
               [_target(f"sum by (backend) ({full_name(ns, 'cache_size_bytes')})",
                        "{{backend}}", "A")],
               unit="bytes", x=0, y=24),
        _panel(8, "Time Since Last Success", "stat",
               [_target(f"time() - max by (pipeline) ("
                        f"{full_name(ns, 'pipeline_last_success_timestamp_seconds')}"
                        f"{{{PIPELINE}}})", "{{pipeline}}", "A")],
               unit="s", x=12, y=24),
    ]


def dashboard(ns: str) -> dict[str, Any]:
    ex = full_name(ns, "pipeline_executions_total")
    return {
        "title": TITLE, "uid": f"{ns or 'attest'}-pipelines".replace("_", "-")[:40],
        "tags": ["attest", "ci"], "timezone": "browser", "editable": True,
        "schemaVersion": 39, "version": 1, "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource",
             "query": "prometheus", "refresh": 1, "hide": 0},
            {"name": "pipeline", "label": "Pipeline", "type": "query",
             "datasource": DATASOURCE,
             "query": {"query": f"label_values({ex}, pipeline)", "refId": "PipelineVariable"},
             "refresh": 2, "includeAll": True, "multi": True, "allValue": ".*",
             "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
             "sort": 1, "hide": 0},
        ]},
        "annotations": {"list": []},
        "panels": panels(ns),
    }
