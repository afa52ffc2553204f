"""The step DAG: cycles, ordering, selection and the critical path (drawn by
``attest_cli.render.pipeline_graph``)."""

from __future__ import annotations

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
