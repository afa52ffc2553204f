"""How ``attest health`` shows a health report: one line per check, or JSON."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from attest_cli.escaping import escape_control as esc

if TYPE_CHECKING:
    from attest_cli.health.checks import HealthReport


def render_text(report: HealthReport) -> str:
    out = [report.status]  # plug-ins name checks and write details: escape both
    names = {name: esc(name) for name in report.checks}
    width = max((len(n) for n in names.values()), default=0)
    for name, r in report.checks.items():
        out.append(f"  {names[name].ljust(width)}  {r.status.ljust(9)}  {esc(r.detail)}  "
                   f"({r.duration_ms:.1f} ms)")
    return "\n".join(out) + "\n"


def render_json(report: HealthReport) -> str:
    return json.dumps(report.to_dict(), indent=2, default=str) + "\n"
