"""How ``attest history`` shows runs: a terminal table or JSON."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from attest_cli.escaping import escape_control
from attest_cli.record import as_dict
from attest_cli.render.figures import duration

if TYPE_CHECKING:
    from attest_cli.metrics.history import RunRecord


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else duration(seconds)


def _verifications(rec: RunRecord) -> str:
    if not rec.verifications:
        return "-"
    bad = sum(1 for v in rec.verifications if not v["ok"])
    return f"{len(rec.verifications) - bad}/{len(rec.verifications)} ok"


def as_table(records: list[RunRecord]) -> str:
    if not records:
        return "no runs recorded yet\n"
    head = ("RUN ID", "PIPELINE", "STATUS", "STARTED (UTC)", "DURATION", "STEPS", "CACHE",
            "VERIFY")
    rows = [head]
    for r in records:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.started_at))
        cache = f"{r.cache_hits}/{r.cache_lookups} hit" if r.cache_lookups else "-"
        rows.append((r.run_id, escape_control(r.pipeline), r.status, started,
                     _duration(r.duration_seconds), f"{r.steps_success}/{r.steps_total}", cache,
                     _verifications(r)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                   .rstrip() + "\n" for row in rows)


def as_json(records: list[RunRecord]) -> list[dict[str, Any]]:
    out = []
    for r in records:
        # shallow (asdict copied the steps, lookups and verifications): only dumped
        item = as_dict(r)
        item["cache_hits"] = r.cache_hits
        item["cache_lookups"] = r.cache_lookups
        out.append(item)
    return out


def render_json(records: list[RunRecord]) -> str:
    import json

    return json.dumps(as_json(records), indent=2, default=str) + "\n"
