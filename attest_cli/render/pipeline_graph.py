"""``attest pipeline show``: the DAG drawn as ascii, mermaid, dot or json, marking the
critical path (weighed by the last durations when there are any, else by step count)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from attest_cli.pipeline.graph import critical_path, levels
from attest_cli.render.figures import human_duration

if TYPE_CHECKING:
    from attest_cli.pipeline.model import Pipeline


@dataclass(frozen=True)
class Drawing:
    """What is drawn: the pipeline, and the durations its critical path is weighed by."""

    pipeline: Pipeline
    durations: Mapping[str, float] | None = None
    path: list[str] = field(init=False)
    total: float = field(init=False)

    def __post_init__(self) -> None:
        path, total = critical_path(self.pipeline, self.durations)
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "total", total)

    @property
    def critical_edges(self) -> set[tuple[str, str]]:
        return set(itertools.pairwise(self.path))


def render_json(d: Drawing) -> str:
    crit = set(d.path)
    return json.dumps({
        "pipeline": d.pipeline.name,
        "steps": [{"name": s.name, "needs": list(s.needs), "critical": s.name in crit}
                  for s in d.pipeline.steps.values()],
        "levels": levels(d.pipeline),
        "critical_path": d.path,
        "critical_path_weight": d.total,
        "weight_unit": "seconds" if d.durations else "steps",
    }, indent=2) + "\n"


def render_mermaid(d: Drawing) -> str:
    steps, edges = d.pipeline.steps.values(), d.critical_edges
    lines = ["graph TD"]
    for s in steps:
        lines.append(f'    {_ident(s.name)}["{s.name}"]')
    for s in steps:
        for n in s.needs:
            arrow = "==>" if (n, s.name) in edges else "-->"
            lines.append(f"    {_ident(n)} {arrow} {_ident(s.name)}")
    if d.path:
        lines.append("    classDef critical stroke:#d33,stroke-width:3px")
        lines.append("    class " + ",".join(_ident(n) for n in d.path) + " critical")
    return "\n".join(lines) + "\n"


def render_dot(d: Drawing) -> str:
    steps, crit, edges = d.pipeline.steps.values(), set(d.path), d.critical_edges
    lines = [f'digraph "{d.pipeline.name}" {{', "    rankdir=LR;"]
    for s in steps:
        style = ' color="red" penwidth=2' if s.name in crit else ""
        lines.append(f'    "{s.name}" [shape=box{style}];')
    for s in steps:
        for n in s.needs:
            style = ' [color="red" penwidth=2]' if (n, s.name) in edges else ""
            lines.append(f'    "{n}" -> "{s.name}"{style};')
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_ascii(d: Drawing) -> str:
    crit = set(d.path)
    lines = [f"{d.pipeline.name}"]
    for i, group in enumerate(levels(d.pipeline)):
        lines.append(f"  stage {i + 1}")
        for name in group:
            needs = d.pipeline.steps[name].needs
            mark = " *" if name in crit else ""
            after = f"  <- {', '.join(needs)}" if needs else ""
            lines.append(f"    {name}{mark}{after}")
    weight = human_duration(d.total) if d.durations else f"{d.total:g} steps"
    lines.append(f"critical path (*): {' -> '.join(d.path)}  ({weight})")
    return "\n".join(lines) + "\n"


def _ident(name: str) -> str:
    return "s_" + "".join(c if c.isalnum() else "_" for c in name)
