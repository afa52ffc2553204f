"""The cache's own objects: written atomically, modes from the umask, no temp files left."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from attest_cli.atomic import write_object
from tests.support import attest


def modes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): stat.S_IMODE(p.stat().st_mode)
            for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600)])
def test_an_object_is_written_whole_with_the_umask_mode(tmp_path: Path, mask: int,
                                                        expected: int) -> None:
    old = os.umask(mask)
    try:
        target = tmp_path / "a" / "b" / "obj"  # parents made on demand
        write_object(str(target), b"first")
        write_object(str(target), b"second")  # replaced whole
    finally:
        os.umask(old)
    assert target.read_bytes() == b"second"
    assert modes(tmp_path) == {"a/b/obj": expected}  # no temp file left behind


def test_concurrent_writers_of_one_object_leave_one_whole_copy(tmp_path: Path) -> None:
    target = tmp_path / "obj"
    payloads = [bytes([i]) * 200_000 for i in range(8)]
    threads = [threading.Thread(target=write_object, args=(str(target), p)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert target.read_bytes() in payloads
    assert [p.name for p in tmp_path.iterdir()] == ["obj"]


def test_a_failed_write_leaves_no_temp_file(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    with pytest.raises(OSError):
        write_object(str(tmp_path / "dir"), b"x")  # a directory is never replaced
    assert [p.name for p in tmp_path.iterdir()] == ["dir"]


def test_stored_cache_objects_honour_the_umask(tmp_path: Path) -> None:
    (tmp_path / "attest.yaml").write_text(
        'version: "0.1"\nname: p\nsteps:\n  a:\n    run: echo hi > out.txt; echo logged\n'
        "    outputs: [out.txt]\n")  # out.txt is held in the manifest, the log is a blob
    old = os.umask(0o077)
    try:
        r = attest("run", "-q", cwd=tmp_path)
    finally:
        os.umask(old)
    assert r.returncode == 0, r.stderr
    cache = modes(tmp_path / ".attest" / "cache")
    assert any(k.startswith("blobs/") for k in cache) and ".entries-v1.db" in cache
    assert set(cache.values()) == {0o600}
    assert not [k for k in cache if k.endswith(".tmp")]


def test_a_manifest_serialises_exactly_as_asdict_did() -> None:
    import json

    from attest_cli.cache.manifest import Manifest, OutputFile, parse

    m = Manifest(key="k" * 64, step="s", files=[
        OutputFile(path="out", kind="dir", mode=0o755),
        OutputFile(path="out/a", kind="file", mode=0o644, digest="blake3:" + "a" * 64, size=3),
        OutputFile(path="out/l", kind="symlink", digest="blake3:" + "b" * 64, target="a")],
        log_digest="blake3:" + "c" * 64, log_size=7, exit_code=0, wall_seconds=1.5,
        created_at=12.25, components={"command": "x", "input:a": "y"})
    # what dataclasses.asdict gave when these were dataclasses (content held inline, the
    # ``data`` field, is the only addition: it is not written as a field)
    plain = {"key": "k" * 64, "step": "s", "files": [
        {"path": "out", "kind": "dir", "mode": 0o755, "digest": "", "size": 0, "target": None},
        {"path": "out/a", "kind": "file", "mode": 0o644, "digest": "blake3:" + "a" * 64,
         "size": 3, "target": None},
        {"path": "out/l", "kind": "symlink", "mode": 0o644, "digest": "blake3:" + "b" * 64,
         "size": 0, "target": "a"}],
        "log_digest": "blake3:" + "c" * 64, "log_size": 7, "exit_code": 0,
        "wall_seconds": 1.5, "created_at": 12.25,
        "components": {"command": "x", "input:a": "y"}, "version": 2}
    assert m.to_json() == json.dumps(plain, sort_keys=True, separators=(",", ":")).encode()
    assert parse(m.to_json(), key=m.key) == m
