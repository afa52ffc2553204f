"""The benchmark result: raw samples plus everything needed to judge them later.

This is the file ``attest benchmark pipeline --output`` writes, ``.attest/benchmarks/``
stores and ``attest benchmark compare`` / ``attest analyze`` read back, so its JSON form is
versioned (``"schema": "attest.benchmark"``, ``"schema_version"``) and documented in
docs/benchmarks.md. Statistics are written for convenience but always recomputed from
the raw samples when read.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attest_cli.bench.stats import Summary, summarize
from attest_cli.errors import InputError

SCHEMA = "attest.benchmark"
SCHEMA_VERSION = 1
METRICS = ("wall", "cpu", "rss")  # what compare and the tables work on
DETAIL = ("cpu_user", "cpu_system")  # recorded too; cpu = cpu_user + cpu_system
UNITS = {"wall": "seconds", "cpu": "seconds", "rss": "bytes", "cpu_user": "seconds",
         "cpu_system": "seconds"}
TOTAL = "total"


@dataclass
class BenchmarkResult:
    """N measured iterations of one pipeline on one machine."""

    label: str
    created_at: str
    pipeline: dict[str, Any]  # name, file, hash, steps (in run order)
    settings: dict[str, Any]  # iterations, warmup, cache, prepare, steps, parallel
    environment: dict[str, Any]
    samples: dict[str, Any]  # {"total": {metric: [..]}, "steps": {name: {metric: [..]}}}
    source: dict[str, Any] = field(default_factory=dict)  # how the side was produced
    runs: list[str] = field(default_factory=list)  # run ids of the measured iterations
    warnings: list[str] = field(default_factory=list)

    @property
    def step_names(self) -> list[str]:
        return list(self.samples.get("steps", {}))

    @property
    def iterations(self) -> int:
        return len(self.samples.get(TOTAL, {}).get("wall", []))

    def series(self, name: str, metric: str) -> list[float]:
        """Samples of ``metric`` for one step, or for the whole run when name is ``total``."""
        if name == TOTAL:
            return list(self.samples[TOTAL][metric])
        return list(self.samples["steps"][name][metric])

    def statistics(self) -> dict[str, Any]:
        def block(by_metric: dict[str, list[float]]) -> dict[str, Any]:
            return {m: summarize(v).to_dict() for m, v in by_metric.items() if v}
        return {TOTAL: block(self.samples[TOTAL]),
                "steps": {n: block(s) for n, s in self.samples["steps"].items()}}

    def summary(self, name: str, metric: str) -> Summary:
        return summarize(self.series(name, metric))

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "label": self.label,
            "created_at": self.created_at, "pipeline": self.pipeline,
            "settings": self.settings, "source": self.source,
            "environment": self.environment, "units": UNITS, "warnings": self.warnings,
            "statistics": self.statistics(), "samples": self.samples, "runs": self.runs,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: Any, *, source: str) -> BenchmarkResult:
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise InputError(f"not an attest benchmark result (expected \"schema\": "
                             f"\"{SCHEMA}\")", path=source)
        if data.get("schema_version") != SCHEMA_VERSION:
            raise InputError(f"benchmark schema_version {data.get('schema_version')!r} is not "
                             f"supported (this attest reads {SCHEMA_VERSION})", path=source)
        for key, kind in (("label", str), ("pipeline", dict), ("settings", dict),
                          ("environment", dict), ("samples", dict)):
            if not isinstance(data.get(key), kind):
                raise InputError(f"missing or not a {kind.__name__}", path=source, key=key)
        samples = data["samples"]
        _check_series(samples.get(TOTAL), source, f"samples.{TOTAL}", None)
        n = len(samples[TOTAL]["wall"])
        steps = samples.get("steps")
        if not isinstance(steps, dict):
            raise InputError("missing or not an object", path=source, key="samples.steps")
        for name, series in steps.items():
            _check_series(series, source, f"samples.steps.{name}", n)
        return cls(label=data["label"], created_at=str(data.get("created_at", "")),
                   pipeline=data["pipeline"], settings=data["settings"],
                   environment=data["environment"], samples=samples,
                   source=data.get("source") or {}, runs=list(data.get("runs") or []),
                   warnings=[str(w) for w in data.get("warnings") or []])

    @classmethod
    def load(cls, path: str | Path) -> BenchmarkResult:
        from attest_cli.jsonfile import load_json

        return cls.from_dict(load_json(path, expected="a benchmark result"), source=str(path))


def _check_series(series: Any, source: str, key: str, n: int | None) -> None:
    if not isinstance(series, dict):
        raise InputError("missing or not an object", path=source, key=key)
    for metric in (*METRICS, *DETAIL):
        values = series.get(metric)
        if metric in DETAIL and values is None:
            continue  # optional detail
        if not isinstance(values, list) or not values:
            raise InputError("missing or empty sample list", path=source, key=f"{key}.{metric}")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                   and v >= 0 for v in values):
            raise InputError("samples must be non-negative numbers", path=source,
                             key=f"{key}.{metric}")
        if n is not None and len(values) != n:
            raise InputError(f"has {len(values)} samples but the total has {n}", path=source,
                             key=f"{key}.{metric}")
