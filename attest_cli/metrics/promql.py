"""The PromQL behind the dashboard and the rules, written once so both mean the same.

The seed's expressions are corrected here: a ratio of runs sums each side *by pipeline*
before dividing (both sides carry ``status``, so a one-to-one division would match each
series only with itself), and the failure alert compares a failure *ratio*, not a rate of
failures per second, with its threshold.
"""

from __future__ import annotations

from attest_cli.metrics.exposition import full_name

WINDOW = "5m"


def _sel(*matchers: str) -> str:
    found = [m for m in matchers if m]
    return "{" + ",".join(found) + "}" if found else ""


def run_ratio(ns: str, status: str, pipeline_matcher: str = "", window: str = WINDOW) -> str:
    """Share of a pipeline's runs with ``status`` over ``window`` (0..1, one series each).

    A pipeline with no run of that status in the window still gets 0 (the ``or`` side),
    never "no data".
    """
    x = full_name(ns, "pipeline_executions_total")
    status_matcher = f'status="{status}"'
    part = f"sum by (pipeline) (rate({x}{_sel(status_matcher, pipeline_matcher)}[{window}]))"
    total = f"sum by (pipeline) (rate({x}{_sel(pipeline_matcher)}[{window}]))"
    return f"({part} or {total} * 0) / {total}"


def cache_hit_ratio(ns: str, window: str = WINDOW, by: str = "") -> str:
    """Cache hits over lookups, summed over instances (and backends unless ``by``)."""
    hits = full_name(ns, "cache_hits_total")
    misses = full_name(ns, "cache_misses_total")
    agg = f"sum by ({by}) " if by else "sum "
    h = f"{agg}(rate({hits}[{window}]))"
    m = f"{agg}(rate({misses}[{window}]))"
    if by:
        return f"{h} / ({h} + ({m} or {h} * 0))"
    return f"{h} / ({h} + ({m} or vector(0)))"


def duration_quantile(ns: str, metric: str, q: float, by: str, pipeline_matcher: str = "",
                      window: str = WINDOW) -> str:
    name = full_name(ns, f"{metric}_bucket")
    return (f"histogram_quantile({q}, sum by (le, {by}) "
            f"(rate({name}{_sel(pipeline_matcher)}[{window}])))")
