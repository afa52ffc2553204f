# ruff: noqa: F811  (the fixtures root and cache come from test_content_cache)
"""The no-op fast paths keep their meaning: one ``lstat`` per literal input, restored outputs.

A literal input is found with one ``lstat`` whose result also feeds the stat index; these
tests pin that it still sees what the slower path saw (a changed, removed or re-linked input
misses; a directory or symlink literal is still expanded) and that a hit still puts back an
output deleted, edited or re-moded since the run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from attest_cli.cache.content_cache import ContentCache
from attest_cli.cache.inputs import input_paths, input_states
from attest_cli.cache.statindex import StatIndex
from attest_cli.engine.run_report import StepResult
from attest_cli.errors import InputError
from attest_cli.pathspec import check_relative, expand, may_reach
from attest_cli.pipeline.model import Step
from tests.cache.test_content_cache import cache, context, root  # noqa: F401  (fixtures)

pytestmark = pytest.mark.unit

STEP = Step(name="build", run="cp src.txt out/x.txt", inputs=("src.txt",),
            outputs=("out/x.txt",))


_ctx = context


def _run(cache: ContentCache, root: Path, tmp_path: Path) -> None:
    """A miss, the step's work, a store."""
    ctx = _ctx(root)
    decision = cache.lookup(ctx)
    assert not decision.hit
    (root / "out").mkdir(exist_ok=True)
    (root / "out" / "x.txt").write_text((root / "src.txt").read_text())
    log = tmp_path / "build.log"
    log.write_text("copied\n")
    outcome = cache.store(ctx, decision, StepResult(name="build", command=STEP.run,
                                                   exit_code=0), log)
    assert outcome.stored


def test_changed_literal_input_still_misses(cache: ContentCache, root: Path,
                                            tmp_path: Path) -> None:
    _run(cache, root, tmp_path)
    assert cache.lookup(_ctx(root)).hit
    (root / "src.txt").write_text("v2, longer\n")
    decision = cache.lookup(_ctx(root))
    assert not decision.hit
    assert "src.txt" in (decision.reason or "")


def test_removed_literal_input_misses_and_is_not_listed(cache: ContentCache, root: Path,
                                                        tmp_path: Path) -> None:
    _run(cache, root, tmp_path)
    (root / "src.txt").unlink()
    decision = cache.lookup(_ctx(root))
    assert not decision.hit
    assert decision.inputs == []


def test_literal_input_replaced_by_a_symlink_misses(cache: ContentCache, root: Path,
                                                    tmp_path: Path) -> None:
    _run(cache, root, tmp_path)
    (root / "other.txt").write_text("v1\n")  # same content, but now reached through a link
    (root / "src.txt").unlink()
    os.symlink("other.txt", root / "src.txt")
    assert not cache.lookup(_ctx(root)).hit


@pytest.mark.parametrize("damage", ["delete", "edit", "chmod"])
def test_hit_restores_an_output_damaged_since_the_run(cache: ContentCache, root: Path,
                                                      tmp_path: Path, damage: str) -> None:
    _run(cache, root, tmp_path)
    out = root / "out" / "x.txt"
    if damage == "delete":
        out.unlink()
    elif damage == "edit":
        out.write_text("v9\n")  # same size, other content
    else:
        out.chmod(0o755)
    decision = cache.lookup(_ctx(root))
    assert decision.hit
    assert out.read_text() == "v1\n"
    assert out.stat().st_mode & 0o111 == 0
    assert decision.log_text == "copied\n"


def test_literal_stat_is_handed_to_the_index(root: Path) -> None:
    stats: dict[str, os.stat_result] = {}
    assert expand(root, ["src.txt", "./src.txt", "missing.txt"], follow_links=True,
                  stats=stats) == ["src.txt"]
    assert set(stats) == {"src.txt"}
    assert stats["src.txt"].st_ino == (root / "src.txt").lstat().st_ino
    [state] = input_states(root, ["src.txt"], StatIndex(None))
    assert (state.path, state.kind, state.size) == ("src.txt", "file", 3)


def test_literal_directory_and_symlink_inputs_still_expand(root: Path) -> None:
    (root / "d" / "e").mkdir(parents=True)
    (root / "d" / "a.txt").write_text("a")
    (root / "d" / "e" / "b.txt").write_text("b")
    (root / "empty").mkdir()
    os.symlink("d", root / "linkdir")
    os.symlink("src.txt", root / "linkfile")
    assert input_paths(root, ["d", "empty/", "linkdir", "linkfile"]) == [
        "d/a.txt", "d/e/b.txt", "empty", "linkdir", "linkfile"]  # d's tree is listed once
    assert expand(root, ["d/", "linkdir", "linkfile"]) == [
        "d/a.txt", "d/e/b.txt", "linkdir", "linkfile"]


@pytest.mark.parametrize("pattern", ["/etc/passwd", "//x", "a/../b", "..", "a/.."])
def test_escaping_declarations_are_still_refused(pattern: str) -> None:
    with pytest.raises(InputError):
        check_relative(pattern)


@pytest.mark.parametrize(("pattern", "target", "reaches"), [
    ("out/x.txt", ".attest", False), (".attest/cache", ".attest", True),
    (".attest", ".attest/cache", True), (".", ".attest", True), ("./.attest/", ".attest", True),
    ("out", "outx", False), ("**", ".attest", False), (".*", ".attest", True),
])
def test_may_reach_literal_and_glob(pattern: str, target: str, reaches: bool) -> None:
    assert may_reach(pattern, target) is reaches
