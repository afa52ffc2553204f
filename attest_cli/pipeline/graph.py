"""The step DAG: cycles, ordering, selection and the critical path, plus its drawings."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from attest_cli.pipeline.model import Pipeline


def find_cycle(edges: Mapping[str, Iterable[str]]) -> list[str] | None:
    """Return the members of one dependency cycle, in order, or ``None``."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in edges.get(node, ()):
            if dep not in edges:
                continue
            if state.get(dep) == 1:
                return stack[stack.index(dep):]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in edges:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def topological_order(pipeline: Pipeline) -> list[str]:
    """Steps in an order where every step comes after its needs (file order breaks ties)."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for dep in pipeline.steps[name].needs:
            visit(dep)
        order.append(name)

    for name in pipeline.steps:
        visit(name)
    return order


def with_needs(pipeline: Pipeline, selected: Iterable[str]) -> set[str]:
    """The selected steps plus everything they transitively need."""
    out: set[str] = set()
    todo = list(selected)
    while todo:
        name = todo.pop()
        if name not in out:
            out.add(name)
            todo.extend(pipeline.steps[name].needs)
    return out


def dependents(pipeline: Pipeline, name: str) -> set[str]:
    """Every step that transitively needs ``name``."""
    out: set[str] = set()
    changed = True
    while changed:
        changed = False
        for step in pipeline.steps.values():
            if step.name not in out and (name in step.needs or out & set(step.needs)):
                out.add(step.name)
                changed = True
    return out


def critical_path(pipeline: Pipeline, durations: Mapping[str, float] | None = None
                  ) -> tuple[list[str], float]:
    """The longest chain by duration (by step count when no durations are known).

    With durations, a step that never ran weighs 0: mixing step counts with seconds would
    let an unmeasured step outweigh a measured one.
    """
    default = 0.0 if durations else 1.0
    weight = {n: (durations or {}).get(n, default) for n in pipeline.steps}
    best: dict[str, tuple[float, list[str]]] = {}
    for name in topological_order(pipeline):
        prior = max((best[d] for d in pipeline.steps[name].needs), default=(0.0, []),
                    key=lambda t: t[0])
        best[name] = (prior[0] + weight[name], [*prior[1], name])
    if not best:
        return [], 0.0
    total, path = max(best.values(), key=lambda t: t[0])
    return path, total


def levels(pipeline: Pipeline) -> list[list[str]]:
    """Steps grouped by depth: everything in one level can run at once."""
    depth: dict[str, int] = {}
    for name in topological_order(pipeline):
        depth[name] = 1 + max((depth[d] for d in pipeline.steps[name].needs), default=-1)
    grouped: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for name, d in depth.items():
        grouped[d].append(name)
    return grouped


def render(pipeline: Pipeline, fmt: str, durations: Mapping[str, float] | None = None) -> str:
    """Draw the DAG as ``ascii``, ``mermaid``, ``dot`` or ``json``, marking the critical path."""
    path, total = critical_path(pipeline, durations)
    crit = set(path)
    crit_edges = set(itertools.pairwise(path))
    if fmt == "json":
        return json.dumps({
            "pipeline": pipeline.name,
            "steps": [{"name": s.name, "needs": list(s.needs), "critical": s.name in crit}
                      for s in pipeline.steps.values()],
            "levels": levels(pipeline),
            "critical_path": path,
            "critical_path_weight": total,
            "weight_unit": "seconds" if durations else "steps",
        }, indent=2)
    if fmt == "mermaid":
        lines = ["graph TD"]
        for s in pipeline.steps.values():
            lines.append(f'    {_ident(s.name)}["{s.name}"]')
        for s in pipeline.steps.values():
            for d in s.needs:
                arrow = "==>" if (d, s.name) in crit_edges else "-->"
                lines.append(f"    {_ident(d)} {arrow} {_ident(s.name)}")
        if crit:
            lines.append("    classDef critical stroke:#d33,stroke-width:3px")
            lines.append("    class " + ",".join(_ident(n) for n in path) + " critical")
        return "\n".join(lines)
    if fmt == "dot":
        lines = [f'digraph "{pipeline.name}" {{', "    rankdir=LR;"]
        for s in pipeline.steps.values():
            style = ' color="red" penwidth=2' if s.name in crit else ""
            lines.append(f'    "{s.name}" [shape=box{style}];')
        for s in pipeline.steps.values():
            for d in s.needs:
                style = ' [color="red" penwidth=2]' if (d, s.name) in crit_edges else ""
                lines.append(f'    "{d}" -> "{s.name}"{style};')
        lines.append("}")
        return "\n".join(lines)
    if fmt == "ascii":
        lines = [f"{pipeline.name}"]
        for i, group in enumerate(levels(pipeline)):
            lines.append(f"  stage {i + 1}")
            for name in group:
                needs = pipeline.steps[name].needs
                mark = " *" if name in crit else ""
                after = f"  <- {', '.join(needs)}" if needs else ""
                lines.append(f"    {name}{mark}{after}")
        weight = human_duration(total) if durations else f"{total:g} steps"
        lines.append(f"critical path (*): {' -> '.join(path)}  ({weight})")
        return "\n".join(lines)
    raise ValueError(f"unknown format {fmt!r}")


def human_duration(seconds: float) -> str:
    """``350ms``, ``1.2s``, ``2m03s``, ``1h02m05s``: the precision a reader needs at each scale."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _ident(name: str) -> str:
    return "s_" + "".join(c if c.isalnum() else "_" for c in name)
