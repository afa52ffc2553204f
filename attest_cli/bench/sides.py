"""Resolve each side of ``attest benchmark compare`` to a result.

A side is, in this order: ``.`` (the current working tree, benchmarked now), a result file,
a stored label (``.attest/benchmarks/<label>.json``), or a git ref. A git ref with no stored
result is checked out into a temporary worktree and benchmarked there with *this* attest;
when both sides need benchmarking their iterations are interleaved. Fresh results are
stored under their label so the next comparison reuses them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from attest_cli.atomic import write_atomic
from attest_cli.bench import gitref, store
from attest_cli.bench.result import BenchmarkResult
from attest_cli.bench.runner import (
    BenchmarkInterrupted,
    BenchmarkSettings,
    Progress,
    RunExecutor,
    Subject,
    benchmark,
)
from attest_cli.context import AppContext
from attest_cli.errors import InputError

WORKTREE = "."


@dataclass
class Side:
    role: str  # baseline | current
    spec: str
    result: BenchmarkResult | None = None
    commit: str | None = None  # a git ref to benchmark
    worktree: bool = False  # the current working tree, benchmarked now
    note: str = ""
    source: dict[str, str] = field(default_factory=dict)


def resolve(ctx: AppContext, role: str, spec: str, *, fresh: bool = False) -> Side:
    if spec == WORKTREE:
        return Side(role, spec, worktree=True,
                    note="the current working tree, benchmarked now")
    path = ctx.path(spec)
    if path.is_file() or spec.endswith(".json"):
        return Side(role, spec, result=BenchmarkResult.load(path),
                    note=f"read from {spec}")
    stored = None if fresh else store.find(ctx, spec)
    if stored is not None:
        return Side(role, spec, result=BenchmarkResult.load(stored),
                    note=f"stored result {ctx.display(stored)}")
    commit = gitref.resolve(ctx.workdir, spec)
    if commit is not None:
        return Side(role, spec, commit=commit,
                    note=f"git ref {spec} ({commit[:12]}) checked out into a "
                         "temporary worktree and benchmarked now with this attest")
    raise InputError(f"--{role} {spec}: not a result file, a stored label (see "
                     "'attest benchmark list') or a git ref of this project")


def _label(ctx: AppContext, side: Side) -> str:
    if side.worktree:
        return store.default_label(ctx.workdir)
    described = gitref.describe(ctx.workdir, side.commit)
    return store.clean_label(described or side.spec)


def _share_project_config(ctx: AppContext, workdir: Path) -> None:
    """The project file ``.attest/config.yaml`` is usually not committed; give the
    worktree the same one so that both sides run with the same settings."""
    source = ctx.state_dir / "config.yaml"
    target = workdir / ".attest" / "config.yaml"
    if source.is_file() and not target.exists():
        write_atomic(target, source.read_bytes())


def obtain(ctx: AppContext, baseline: Side, current: Side, settings: BenchmarkSettings,
           progress: Progress | None = None, *,
           execute: RunExecutor) -> tuple[BenchmarkResult, BenchmarkResult]:
    """Benchmark the sides that need it (interleaved) and return both results."""
    todo = [s for s in (baseline, current) if s.result is None]
    if not todo:
        assert baseline.result is not None and current.result is not None
        return baseline.result, current.result
    root = gitref.repo_root(ctx.workdir) if any(s.commit for s in todo) else None
    pipeline_file = ctx.pipeline_path(settings.pipeline)
    with contextlib.ExitStack() as stack:
        subjects: list[Subject] = []
        for side in todo:
            label = _label(ctx, side)
            if len(todo) == 2 and subjects and subjects[0].label == label:
                label = f"{label}-{side.role}"
            if side.worktree:
                subjects.append(Subject(label, ctx, {"kind": "worktree"}))
                continue
            assert root is not None and side.commit is not None
            tree = stack.enter_context(gitref.worktree(root, side.commit))
            try:
                rel_workdir = ctx.workdir.resolve().relative_to(root.resolve())
                rel_pipeline = pipeline_file.resolve().relative_to(root.resolve())
            except ValueError:
                raise InputError(f"{pipeline_file}: the pipeline is outside the git "
                                 "repository, so a git ref cannot provide it") from None
            workdir = tree / rel_workdir
            if not (tree / rel_pipeline).is_file():
                raise InputError(f"--{side.role} {side.spec}: {rel_pipeline} does not exist "
                                 "at that commit")
            _share_project_config(ctx, workdir)
            sub_ctx = AppContext(workdir=workdir, environ=dict(ctx.environ),
                                 config_file=ctx.config_file, verbose=ctx.verbose,
                                 quiet=ctx.quiet)
            subjects.append(Subject(label, sub_ctx,
                                    {"kind": "git-ref", "ref": side.spec, "commit": side.commit},
                                    pipeline=str(tree / rel_pipeline)))
        try:
            results = benchmark(subjects, settings, progress, execute=execute)
        except BenchmarkInterrupted as exc:
            for partial in exc.partial or []:  # keep what was measured; compare nothing
                store.save(ctx, partial)
            raise
    for side, result in zip(todo, results, strict=True):
        side.result = result
        store.save(ctx, result)
        side.note += f"; stored as '{result.label}'"
        if len(todo) == 2:
            side.note += "; iterations interleaved with the other side"
    assert baseline.result is not None and current.result is not None
    return baseline.result, current.result
