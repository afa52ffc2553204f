"""The store's vouchers from the key's own walk (fresh.walked_vouchers): the directories the
expansion listed are lstat-ed again instead of listed again, and anything it cannot vouch
for falls back to the full walk (fresh.vouchers)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from attest_cli.cache import fresh
from attest_cli.cache.fresh import FreshIndex, vouchers, walked_vouchers
from attest_cli.cache.inputs import InputWalk, input_states
from attest_cli.cache.statindex import FileState, Signature, StatIndex
from attest_cli.pipeline.model import Step

pytestmark = pytest.mark.unit


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for rel in ("data/a.txt", "data/sub/b.txt", "data/sub/deep/c.txt", "top.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    (tmp_path / "data" / "empty").mkdir()
    time.sleep(0.05)  # every directory older than the walk, beyond the clock's tick
    return tmp_path


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Directories just made count as settled (a real tree is older than RACY_SECONDS)."""
    monkeypatch.setattr(fresh, "RACY_SECONDS", 0.0)


def walked(root: Path, patterns: tuple[str, ...]) -> tuple[InputWalk, list[FileState]]:
    walk = InputWalk()
    return walk, input_states(root, patterns, StatIndex(None), walk)


def files(states: list[FileState]) -> dict[str, Signature]:
    return {s.path: s.signature for s in states if s.kind == "file"}


def full(root: Path, patterns: tuple[str, ...], states: list[FileState]) -> fresh.Vouchers:
    found = vouchers(str(root), patterns, [s.path for s in states], files(states),
                     empty_dirs=True)
    assert found is not None
    return found


@pytest.mark.usefixtures("settled")
def test_the_same_vouchers_as_walking_the_trees_again(tree: Path) -> None:
    patterns = ("data/**", "top.txt")
    walk, states = walked(tree, patterns)
    assert walk.complete and set(walk.dirs) == {"data", "data/empty", "data/sub",
                                                "data/sub/deep"}
    mine = walked_vouchers(str(tree), patterns, files(states), walk)
    assert mine is not None
    assert sorted(mine) == sorted(full(tree, patterns, states))


@pytest.mark.usefixtures("settled")
def test_an_entry_added_since_the_walk_is_not_vouched_for(tree: Path) -> None:
    patterns = ("data/",)
    walk, states = walked(tree, patterns)
    (tree / "data" / "sub" / "deep" / "new.txt").write_text("new")  # "while the step ran"
    assert walked_vouchers(str(tree), patterns, files(states), walk) is None
    # nor by the full walk the store falls back to: the trees no longer expand the same
    step = Step(name="s", run="true", inputs=patterns)
    assert FreshIndex.input_vouchers(tree, step, states, walk) is None


@pytest.mark.usefixtures("settled")
@pytest.mark.parametrize("patterns", [("data/**", "absent.txt"), ("data/*.txt",),
                                      ("data/**", "top.txt/")])
def test_what_the_walk_cannot_vouch_for_is_left_to_the_full_walk(
        tree: Path, patterns: tuple[str, ...]) -> None:
    walk, states = walked(tree, patterns)
    assert walked_vouchers(str(tree), patterns, files(states), walk) is None


@pytest.mark.usefixtures("settled")
def test_a_fifo_in_the_tree_leaves_nothing_vouched(tree: Path) -> None:
    os.mkfifo(tree / "data" / "pipe")
    walk, states = walked(tree, ("data/**",))
    assert not walk.complete
    assert walked_vouchers(str(tree), ("data/**",), files(states), walk) is None


def test_a_directory_changed_just_before_the_walk_is_not_trusted(tree: Path) -> None:
    """Its listing could miss an entry added in the same clock tick as the change before
    it: only the full walk, made now, can vouch for it."""
    walk, states = walked(tree, ("data/**",))
    assert walked_vouchers(str(tree), ("data/**",), files(states), walk) is None
    walk.began_ns += int(fresh.RACY_SECONDS * 1e9) + 10**9  # as if the walk were later
    assert walked_vouchers(str(tree), ("data/**",), files(states), walk) is not None


@pytest.mark.usefixtures("settled")
def test_a_directory_the_walk_could_not_list_vouches_for_nothing(
        tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A transient error listing data/sub (EMFILE, EIO) leaves its files out of the key; its
    unchanged signature must not then vouch that the listing was complete."""
    from attest_cli import pathspec

    real = os.scandir

    def failing(path: str) -> object:
        if str(path).endswith("/data/sub"):
            raise OSError(24, "Too many open files")
        return real(path)

    monkeypatch.setattr(pathspec.os, "scandir", failing)
    walk, states = walked(tree, ("data",))
    monkeypatch.setattr(pathspec.os, "scandir", real)
    assert "data/sub/b.txt" not in [s.path for s in states]
    assert walk.dirs["data/sub"] is None
    assert walked_vouchers(str(tree), ("data",), files(states), walk) is None
    step = Step(name="s", run="true", inputs=("data",))
    assert FreshIndex.input_vouchers(tree, step, states, walk) is None  # listed now: differs
