"""How ``attest run --dry-run`` shows its plan: one line per step, or JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from attest_cli.compactjson import fields_dict


@dataclass(frozen=True)
class Plan:
    """The steps that would run, in order (``PlannedStep`` values of the run service)."""

    pipeline: str
    steps: list[Any]

    @property
    def cached(self) -> int:
        return sum(1 for s in self.steps
                   if s.prediction is not None and s.prediction.status == "cached")


def render_json(plan: Plan) -> str:
    return json.dumps({"pipeline": plan.pipeline, "dry_run": True,
                       "would_run": len(plan.steps) - plan.cached, "cached": plan.cached,
                       "steps": [fields_dict(s) for s in plan.steps]},
                      indent=2, default=fields_dict) + "\n"  # nested: asked again


def render_text(plan: Plan) -> str:
    steps, cached = plan.steps, plan.cached
    out = [f"{plan.pipeline}: {len(steps)} step(s) planned, {len(steps) - cached} would run, "
           f"{cached} cached (dry run, nothing executed)\n"]
    for s in steps:
        needs = f"  needs: {', '.join(s.needs)}" if s.needs else ""
        extra = [] if s.cache else ["cache off"]
        if s.timeout:
            extra.append(f"timeout {s.timeout:g}s")
        suffix = f"  ({', '.join(extra)})" if extra else ""
        status = f"  -> {s.prediction.describe()}" if s.prediction is not None else ""
        out.append(f"  [{s.level + 1}] {s.name}: {s.command}{needs}{suffix}{status}\n")
    return "".join(out)
