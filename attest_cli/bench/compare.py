"""Compare two benchmark results step by step, with a significance test on raw samples.

For each step present on both sides and for the total: both means and medians, the change
in percent (Hodges-Lehmann shift over the baseline median) with its distribution-free
confidence interval, a two-sided Mann-Whitney U test, and a verdict. A difference is only
called *faster* or *slower* when the test's p-value is below ``alpha``; the regression
gate additionally needs the whole confidence interval above the threshold, so a noisy
runner does not fail a build by chance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from attest_cli.bench.environment import COMPARABLE_KEYS
from attest_cli.bench.result import METRICS, TOTAL, BenchmarkResult
from attest_cli.bench.stats import (
    Change,
    RankTest,
    Summary,
    mann_whitney_u,
    min_p_value,
    relative_change,
    summarize,
)
from attest_cli.errors import InputError, UsageError

TEST_NAME = "Mann-Whitney U (two-sided)"
CHANGE_NAME = "Hodges-Lehmann shift (median of pairwise differences) / baseline median"
CI_NAME = "distribution-free (Moses) interval of that shift, from the U distribution"
FASTER, SLOWER, SAME = "faster", "slower", "no significant change"


def _finite(value: float) -> float | None:
    """JSON has no infinity (a change from a zero baseline, e.g. CPU of a cache hit)."""
    return value if math.isfinite(value) else None


@dataclass
class Row:
    name: str  # a step name, or "total"
    baseline: Summary | None
    current: Summary | None
    change: Change | None = None
    test: RankTest | None = None
    verdict: str = SAME

    @property
    def kind(self) -> str:
        return "total" if self.name == TOTAL else "step"

    @property
    def significant(self) -> bool:
        return self.verdict in (FASTER, SLOWER)

    def to_dict(self) -> dict[str, Any]:
        def side(s: Summary | None) -> dict[str, Any] | None:
            return None if s is None else {"n": s.n, "mean": s.mean, "median": s.median,
                                           "stdev": s.stdev, "min": s.min, "max": s.max}
        return {
            "name": self.name, "kind": self.kind,
            "baseline": side(self.baseline), "current": side(self.current),
            "change_pct": _finite(self.change.pct) if self.change else None,
            "ci_low_pct": _finite(self.change.ci_low) if self.change else None,
            "ci_high_pct": _finite(self.change.ci_high) if self.change else None,
            "mean_change_pct": _finite(self.change.mean_pct) if self.change else None,
            "p_value": self.test.p_value if self.test else None,
            "test_method": self.test.method if self.test else None,
            "significant": self.significant, "verdict": self.verdict,
        }


@dataclass
class Comparison:
    baseline: BenchmarkResult
    current: BenchmarkResult
    metric: str
    alpha: float
    rows: list[Row]
    warnings: list[str] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)  # role -> how that side was obtained
    threshold: float | None = None  # --fail-on-regression

    @property
    def regressions(self) -> list[Row]:
        """Rows that fail the gate: significantly slower, CI lower bound above threshold."""
        if self.threshold is None:
            return []
        return [r for r in self.rows if r.verdict == SLOWER and r.change is not None
                and r.change.ci_low > self.threshold]

    def to_dict(self) -> dict[str, Any]:
        def side(r: BenchmarkResult) -> dict[str, Any]:
            return {"label": r.label, "source": r.source, "iterations": r.iterations,
                    "cache": r.settings.get("cache"), "pipeline_hash": r.pipeline.get("hash"),
                    "created_at": r.created_at}
        return {
            "schema": "attest.benchmark-comparison", "schema_version": 1,
            "metric": self.metric, "alpha": self.alpha, "test": TEST_NAME,
            "change": CHANGE_NAME,
            "confidence_interval": {"method": CI_NAME, "level": 1 - self.alpha},
            "baseline": side(self.baseline), "current": side(self.current),
            "notes": self.notes, "warnings": self.warnings,
            "rows": [r.to_dict() for r in self.rows],
            "gate": None if self.threshold is None else {
                "threshold_pct": self.threshold, "failed": bool(self.regressions),
                "regressions": [r.name for r in self.regressions]},
        }


def comparability(baseline: BenchmarkResult, current: BenchmarkResult) -> list[str]:
    """Why the two results might not be comparable (warnings); raises when they cannot be."""
    common = set(baseline.step_names) & set(current.step_names)
    if not common:
        raise InputError(f"the results share no step ({baseline.label}: "
                         f"{', '.join(baseline.step_names)}; {current.label}: "
                         f"{', '.join(current.step_names)}): they are from different pipelines")
    warnings = []
    bcache, ccache = baseline.settings.get("cache"), current.settings.get("cache")
    if bcache != ccache:
        # Meaningful only as "what does the cache save", never as a regression check.
        warnings.append(f"{baseline.label} was measured with a {bcache} cache and "
                        f"{current.label} with a {ccache} cache: this compares cache modes, "
                        "not versions")
    bname, cname = baseline.pipeline.get("name"), current.pipeline.get("name")
    if bname != cname:
        warnings.append(f"different pipeline names ({bname!r} vs {cname!r})")
    if baseline.pipeline.get("hash") != current.pipeline.get("hash"):
        warnings.append("the pipeline definitions differ (different pipeline hash): a change "
                        "may come from the pipeline itself, not from the code")
    for key, what in COMPARABLE_KEYS.items():
        b, c = baseline.environment.get(key), current.environment.get(key)
        if b != c:
            warnings.append(f"different {what} ({b} vs {c})")
    if baseline.settings.get("steps") != current.settings.get("steps"):
        warnings.append("different --step selections")
    return warnings


def compare(baseline: BenchmarkResult, current: BenchmarkResult, *, metric: str = "wall",
            alpha: float = 0.05, threshold: float | None = None) -> Comparison:
    if metric not in METRICS:
        raise UsageError(f"--metric {metric!r}: use one of {', '.join(METRICS)}")
    if not 0 < alpha < 0.5:
        raise UsageError(f"--alpha {alpha}: must be between 0 and 0.5")
    warnings = comparability(baseline, current)
    n1, n2 = baseline.iterations, current.iterations
    floor = min_p_value(n1, n2)
    if floor >= alpha:
        raise InputError(f"too few samples for the test: with {n1} and {n2} iterations the "
                         f"smallest possible p-value is {floor:.3g}, not below alpha {alpha}; "
                         "use at least 4 iterations on each side")
    level = 1 - alpha
    rows = [_row(TOTAL, baseline.series(TOTAL, metric), current.series(TOTAL, metric),
                 alpha, level)]
    names = list(baseline.step_names) + [n for n in current.step_names
                                         if n not in baseline.step_names]
    for name in names:
        b = baseline.series(name, metric) if name in baseline.step_names else None
        c = current.series(name, metric) if name in current.step_names else None
        rows.append(_row(name, b, c, alpha, level))
    only = [r.name for r in rows if r.baseline is None or r.current is None]
    if only:
        warnings.append(f"steps only on one side (no verdict; the totals are not like for "
                        f"like): {', '.join(only)}")
    return Comparison(baseline, current, metric, alpha, rows, warnings, threshold=threshold)


def _row(name: str, b: list[float] | None, c: list[float] | None, alpha: float,
         level: float) -> Row:
    row = Row(name, summarize(b) if b else None, summarize(c) if c else None)
    if not b or not c:
        row.verdict = "only in " + ("current" if c else "baseline")
        return row
    row.change = relative_change(b, c, level=level)
    row.test = mann_whitney_u(b, c)
    if row.test.p_value < alpha:
        row.verdict = SLOWER if row.test.current_larger else FASTER
    return row
