"""The check that inputs did not change while a step ran, shared with a helper process
(attest_cli.cache.parallel_restat): the same answer whoever checks which file."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from attest_cli.cache import parallel_restat
from attest_cli.cache.parallel_restat import RestatCheck
from attest_cli.cache.statindex import FileState, restat, signature_of


@pytest.fixture
def states(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[FileState]:
    monkeypatch.setattr(parallel_restat, "SHARE_FROM", 10)
    monkeypatch.setattr(parallel_restat, "usable_cores", lambda: 2)
    out = []
    for i in range(50):
        rel = f"d{i % 3}/f{i:02d} name"  # a space in the name, as the protocol must allow
        p = tmp_path / rel
        p.parent.mkdir(exist_ok=True)
        p.write_text(f"input {i}\n")
        out.append(FileState(path=rel, kind="file", mode=0o644, size=p.stat().st_size,
                             digest="", signature=signature_of(os.lstat(p))))
    return out


def touch(root: Path, state: FileState, text: str = "changed, longer\n") -> None:
    (root / state.path).write_text(text)


def test_changes_on_either_side_are_found_in_order(tmp_path: Path,
                                                   states: list[FileState]) -> None:
    touch(tmp_path, states[3])  # the helper's part (changed while the step ran)
    (tmp_path / states[12].path).unlink()  # the helper's part, gone
    touch(tmp_path, states[44])  # this side's part
    check = RestatCheck(tmp_path, states)
    assert check.proc is not None and len(check.head) == 30  # the helper has the head
    changed = check.finish()
    assert changed == [states[3].path, states[12].path, states[44].path]
    assert changed == restat(tmp_path, states)
    assert check.proc is None


def test_nothing_changed_is_an_empty_answer(tmp_path: Path, states: list[FileState]) -> None:
    check = RestatCheck(tmp_path, states)
    assert check.proc is not None
    assert check.finish() == []


def test_a_helper_that_cannot_answer_leaves_its_part_to_this_side(
        tmp_path: Path, states: list[FileState], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel_restat, "WORKER", tmp_path / "no-such-worker.py")
    touch(tmp_path, states[5])
    check = RestatCheck(tmp_path, states)  # the interpreter starts, the script does not
    assert check.finish() == [states[5].path]


def test_few_inputs_or_one_core_start_no_helper(tmp_path: Path, states: list[FileState],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    assert RestatCheck(tmp_path, states[:9]).proc is None
    monkeypatch.setattr(parallel_restat, "usable_cores", lambda: 1)
    touch(tmp_path, states[0])
    check = RestatCheck(tmp_path, states)
    assert check.proc is None
    assert check.finish() == [states[0].path]


def test_close_stops_a_helper_whose_answer_was_never_read(tmp_path: Path,
                                                          states: list[FileState]) -> None:
    check = RestatCheck(tmp_path, states)
    proc = check.proc
    assert proc is not None
    check.close()
    assert proc.returncode is not None and check.proc is None


def test_a_helper_started_early_checks_only_once_the_step_has_ended(
        tmp_path: Path, states: list[FileState]) -> None:
    """Started before the step (begin=False), the helper has its list but looks at no file
    until begin(): a change made while the step runs is in its part and still found."""
    check = RestatCheck(tmp_path, states, begin=False)
    proc = check.proc
    assert proc is not None and len(check.head) == 25  # an even share: it is up already
    time.sleep(0.3)  # long enough for the helper to have checked, had it not waited
    assert proc.poll() is None
    touch(tmp_path, states[2])  # "while the step ran", in the helper's part
    check.begin()
    assert check.finish() == [states[2].path]
    assert proc.returncode is not None


def test_close_stops_an_early_helper_that_never_began(tmp_path: Path,
                                                       states: list[FileState]) -> None:
    check = RestatCheck(tmp_path, states, begin=False)
    proc = check.proc
    assert proc is not None
    check.close()
    assert proc.returncode is not None and check.proc is None


def test_a_name_that_is_not_utf8_reaches_the_helper_intact(tmp_path: Path,
                                                          states: list[FileState]) -> None:
    raw = os.fsencode(str(tmp_path)) + b"/d0/odd-\xff-name"
    with open(raw, "wb") as f:
        f.write(b"x")
    rel = os.fsdecode(raw)[len(str(tmp_path)) + 1:]  # a surrogate escape in the str
    odd = FileState(path=rel, kind="file", mode=0o644, size=1, digest="",
                    signature=signature_of(os.lstat(raw)))
    mixed = [odd, *states]
    check = RestatCheck(tmp_path, mixed)
    assert check.proc is not None and odd in check.head
    assert check.finish() == []
    with open(raw, "ab") as f:
        f.write(b"longer")
    check = RestatCheck(tmp_path, mixed)
    assert check.finish() == [rel]
