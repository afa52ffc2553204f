"""Hashing shared with a helper process (attest_cli.cache.parallel_hash): same digests,
whoever hashes which file, and no file lost when the helper fails."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from attest_cli.cache import parallel_hash
from attest_cli.cache.parallel_hash import SharedHashing
from attest_cli.cache.statindex import _hash
from attest_cli.digest import bytes_digest


@pytest.fixture
def files(tmp_path: Path) -> list[tuple[str, int]]:
    out = []
    for i in range(600):
        p = tmp_path / f"d{i % 7}" / f"f{i:04d}"
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(os.urandom(i * 37 % 5000))
        out.append((str(p), p.stat().st_size))
    return out


def run(files: list[tuple[str, int]], calls: list[str] | None = None, *,
        slow: bool = False) -> list[str]:
    def hash_one(path: str, size: int) -> str:
        if calls is not None:
            calls.append(path)
        if slow:  # this side slower than the helper, whatever the machine's load
            time.sleep(0.002)
        return _hash(path, size)

    shared = SharedHashing(hash_one)
    try:
        for path, size in files:
            shared.add(path, size)
        return shared.finish()
    finally:
        shared.close()


def test_the_helper_hashes_part_of_the_files_and_every_digest_is_right(
        files: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel_hash, "MIN_ESTIMATE_MS", 0.0)
    monkeypatch.setattr(parallel_hash, "usable_cores", lambda: 2)
    started: list[parallel_hash._Helper] = []
    real = parallel_hash._Helper

    def spy() -> parallel_hash._Helper:
        started.append(real())
        return started[-1]

    monkeypatch.setattr(parallel_hash, "_Helper", spy)
    calls: list[str] = []
    digests = run(files, calls, slow=True)
    assert digests == [bytes_digest(Path(p).read_bytes()) for p, _ in files]
    assert len(started) == 1 and started[0].proc.returncode is not None  # stopped
    assert started[0].results, "the helper hashed nothing"
    assert len(calls) < len(files)  # so this process did not hash them all


def test_a_file_the_helper_cannot_read_is_hashed_here_and_its_error_raised(
        files: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel_hash, "MIN_ESTIMATE_MS", 0.0)
    monkeypatch.setattr(parallel_hash, "usable_cores", lambda: 2)
    os.unlink(files[1][0])  # near the head: the helper's end of the list
    with pytest.raises(FileNotFoundError):
        run(files)


def test_a_helper_that_cannot_start_leaves_the_work_here(
        files: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel_hash, "MIN_ESTIMATE_MS", 0.0)
    monkeypatch.setattr(parallel_hash, "usable_cores", lambda: 2)
    monkeypatch.setattr(parallel_hash, "WORKER", Path("/nonexistent/hash_worker.py"))
    calls: list[str] = []
    assert run(files, calls) == [bytes_digest(Path(p).read_bytes()) for p, _ in files]
    assert len(calls) == len(files)


def test_one_core_or_little_work_starts_no_helper(
        files: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> None:
        raise AssertionError("a helper was started")

    monkeypatch.setattr(parallel_hash, "_Helper", refuse)
    run(files[:50])  # ~0.6 ms of work
    monkeypatch.setattr(parallel_hash, "MIN_ESTIMATE_MS", 0.0)
    monkeypatch.setattr(parallel_hash, "usable_cores", lambda: 1)
    run(files)
