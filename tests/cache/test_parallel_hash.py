"""Hashing shared with a helper process (attest_cli.cache.parallel_hash): same digests,
whoever hashes which file, and no file lost when the helper fails."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from attest_cli.cache import parallel_hash
from attest_cli.cache.parallel_hash import UNKNOWN, Hashed, SharedHashing
from attest_cli.cache.statindex import _stat_and_hash
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
        slow: bool = False, unknown: bool = False) -> list[str]:
    """The digests of ``files``, shared; ``unknown``: sizes not given (lstat-ed by whoever
    hashes), and each result must then carry the file's lstat fields."""
    def hash_one(path: str, size: int) -> Hashed:
        if calls is not None:
            calls.append(path)
        if slow:  # this side slower than the helper, whatever the machine's load
            time.sleep(0.002)
        return _stat_and_hash(path, size)

    shared = SharedHashing(hash_one, expected=len(files), big=1 << 20)
    try:
        for i, (path, size) in enumerate(files):
            shared.add(path, UNKNOWN if unknown else size, i)
        results = shared.finish()
    finally:
        shared.close()
    digests = []
    for (path, _), result in zip(files, results, strict=True):
        assert result is not None
        digest, fields = result
        if unknown:
            st = os.lstat(path)
            assert fields == (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns,
                              st.st_ctime_ns, st.st_mode)
        else:
            assert fields is None
        digests.append(digest)
    return digests


@pytest.mark.parametrize("unknown", [False, True], ids=["sizes given", "lstat by the hasher"])
def test_the_helper_hashes_part_of_the_files_and_every_digest_is_right(
        files: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch, unknown: bool) -> None:
    monkeypatch.setattr(parallel_hash, "MIN_ESTIMATE_MS", 0.0)
    monkeypatch.setattr(parallel_hash, "usable_cores", lambda: 2)
    started: list[parallel_hash._Helper] = []
    real = parallel_hash._Helper

    def spy(big: int) -> parallel_hash._Helper:
        started.append(real(big))
        return started[-1]

    monkeypatch.setattr(parallel_hash, "_Helper", spy)
    calls: list[str] = []
    digests = run(files, calls, slow=True, unknown=unknown)
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
    with pytest.raises(FileNotFoundError):
        run(files, unknown=True)


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
    def refuse(big: int) -> None:
        raise AssertionError("a helper was started")

    monkeypatch.setattr(parallel_hash, "_Helper", refuse)
    run(files[:10])  # too few to extrapolate from
    monkeypatch.setattr(parallel_hash, "MIN_ESTIMATE_MS", 0.0)
    monkeypatch.setattr(parallel_hash, "usable_cores", lambda: 1)
    run(files)


def test_a_first_scan_shared_with_the_helper_sees_every_kind_of_path_as_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a first run the scan hands over files it has not lstat-ed: a directory, a link,
    a FIFO and a file over 8 MiB come back to it and are looked at as before."""
    from attest_cli.cache import statindex
    from attest_cli.cache.statindex import StatIndex

    root = tmp_path / "ws"
    (root / "empty").mkdir(parents=True)
    for i in range(40):
        (root / f"f{i:02d}").write_bytes(os.urandom(100 + i))
    (root / "big").write_bytes(os.urandom(statindex._SMALL + 10))
    (root / "link").symlink_to("f01")
    os.mkfifo(root / "pipe")
    rels = sorted(p.name for p in root.iterdir())
    monkeypatch.setattr(parallel_hash, "usable_cores", lambda: 1)
    alone = StatIndex(None).scan(root, rels, follow=True)
    monkeypatch.setattr(parallel_hash, "usable_cores", lambda: 2)
    monkeypatch.setattr(parallel_hash, "MIN_ESTIMATE_MS", 0.0)
    started: list[int] = []
    real = parallel_hash._Helper

    def spy(big: int) -> parallel_hash._Helper:
        started.append(big)
        return real(big)

    monkeypatch.setattr(parallel_hash, "_Helper", spy)
    shared = StatIndex(None).scan(root, rels, follow=True)
    assert started == [statindex._SMALL]
    assert shared == alone
    assert {s.path: s.kind for s in shared} == {
        **{f"f{i:02d}": "file" for i in range(40)}, "big": "file", "empty": "dir",
        "link": "symlink"}
