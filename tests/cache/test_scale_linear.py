"""Issue 14: work per step on the run path does not grow with the size of the pipeline.

No timings here (they belong to benchmarks/scale.py): each test counts the work itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from attest_cli.cache.backends.local import LocalBackend
from attest_cli.cache.content_cache import ContentCache
from attest_cli.cache.statindex import StatIndex
from attest_cli.pipeline.model import Pipeline, Step


class CountingSteps(dict[str, Step]):
    """A pipeline's step table that counts whole-table walks."""

    walks = 0

    def values(self):  # type: ignore[override]
        CountingSteps.walks += 1
        return super().values()

    def items(self):  # type: ignore[override]
        CountingSteps.walks += 1
        return super().items()

    def __iter__(self):  # type: ignore[override]
        CountingSteps.walks += 1
        return super().__iter__()


def test_keying_every_step_walks_the_step_table_at_most_once(tmp_path: Path) -> None:
    n = 200
    steps = CountingSteps({f"s{i}": Step(name=f"s{i}", run=f"echo {i} $TOKEN{i}",
                                          secrets=(f"TOKEN{i}",)) for i in range(n)})
    pipeline = Pipeline(name="p", path=tmp_path / "attest.yaml", root=tmp_path, steps=steps)
    cache = ContentCache(local=LocalBackend(tmp_path / "cache"), index=StatIndex(None))
    CountingSteps.walks = 0
    for step in steps.copy().values():
        cache.key_for(pipeline, step, {})
        cache._warn_undeclared(pipeline, step, {f"TOKEN{i}": "x" for i in range(3)})
    assert CountingSteps.walks <= 1  # once for the secret names, not once per step


def test_secret_names_are_the_union_of_every_steps_secrets(tmp_path: Path) -> None:
    steps = {"a": Step(name="a", run="true", secrets=("A", "B")),
             "b": Step(name="b", run="true", secrets=("B", "C"))}
    pipeline = Pipeline(name="p", path=tmp_path / "attest.yaml", root=tmp_path, steps=steps)
    assert pipeline.secret_names == {"A", "B", "C"}
    assert pipeline.secret_names is pipeline.secret_names  # computed once


def test_keying_a_step_does_not_re_resolve_the_project_root(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path.joinpath(*[f"d{i}" for i in range(20)])  # a deep project directory
    root.mkdir(parents=True)
    n = 50
    for i in range(n):
        (root / f"in{i}.txt").write_text(str(i))
    steps = {f"s{i}": Step(name=f"s{i}", run="true", inputs=(f"in{i}.txt",)) for i in range(n)}
    pipeline = Pipeline(name="p", path=root / "attest.yaml", root=root, steps=steps)
    cache = ContentCache(local=LocalBackend(tmp_path / "cache"), index=StatIndex(None))
    cache.key_for(pipeline, steps["s0"], {})
    calls: list[str] = []
    real = os.lstat
    monkeypatch.setattr(os, "lstat", lambda p, *a, **k: (calls.append(str(p)), real(p, *a, **k))[1])
    for step in steps.values():
        cache.key_for(pipeline, step, {})
    assert len(calls) <= 10 * n  # a few per step, not one per component of the root's path
