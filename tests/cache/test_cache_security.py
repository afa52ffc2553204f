"""Restores never leave the workspace; keys are canonical; unchanged files are not re-read."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import pytest

from attest_cli.cache.keys import build_parts, encode, key_env
from attest_cli.cache.manifest import MANIFEST_VERSION, CorruptEntry, Manifest, OutputFile, parse
from attest_cli.cache.restore import UnsafeRestore, process_umask, restore_files
from attest_cli.cache.statindex import StatIndex
from attest_cli.digest import bytes_digest
from tests.support import attest, cache_entries, write_pipeline

PIPELINE = """
name: victim
steps:
  build:
    run: mkdir -p .count && echo x >> .count/build && mkdir -p out && echo real > out/file.txt
    outputs: [out/]
"""


def plant(project: Path, files: list[dict], blobs: dict[str, bytes]) -> str:
    """Write a hand-made entry for the step's current key into the local cache."""
    explain = attest("cache", "explain", "build", "--format", "json", cwd=project)
    assert explain.returncode == 0, explain.stderr
    key = json.loads(explain.stdout)["key"]
    cache = project / ".attest" / "cache"
    log = b"planted log\n"
    blobs = {**blobs, bytes_digest(log): log}
    for digest, data in blobs.items():
        hexd = digest.removeprefix("blake3:")
        path = cache / "blobs" / hexd[:2] / hexd
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    manifest = {"version": MANIFEST_VERSION, "key": key, "step": "build", "files": files,
                "log_digest": bytes_digest(log), "log_size": len(log), "exit_code": 0,
                "wall_seconds": 0.1, "created_at": time.time(), "components": {}}
    (cache / "entries").mkdir(parents=True, exist_ok=True)
    (cache / "entries" / key).write_text(json.dumps(manifest))
    return key


def file_entry(path: str, data: bytes) -> dict:
    return {"path": path, "kind": "file", "mode": 0o644, "digest": bytes_digest(data),
            "size": len(data), "target": None}


def run_victim(project: Path) -> tuple[str, dict]:
    report = project / ".attest" / "r.json"
    proc = attest("run", "--log-format", "json", "--report", str(report), cwd=project)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr, json.loads(report.read_text())["steps"][0]


@pytest.mark.parametrize("path", ["/tmp/attest-escape.txt", "../escape.txt", "out/../../x",
                                  "out//x", "out/./x"])
def test_entry_with_a_path_outside_the_workspace_is_rejected(project: Path, path: str) -> None:
    write_pipeline(project, PIPELINE)
    key = plant(project, [file_entry(path, b"evil\n")], {bytes_digest(b"evil\n"): b"evil\n"})
    _, result = run_victim(project)
    assert result["status"] == "success"  # executed instead
    assert "corrupt entry deleted" in result["cache_miss_reason"]
    assert not Path("/tmp/attest-escape.txt").exists()
    assert not (project.parent / "escape.txt").exists()
    # the planted entry was deleted; the step's real result took its place
    stored = json.loads(cache_entries(project / ".attest" / "cache")[key])
    assert [f["path"] for f in stored["files"]] == ["out", "out/file.txt"]


def test_entry_writing_outside_the_declared_outputs_is_rejected(project: Path) -> None:
    write_pipeline(project, PIPELINE)
    plant(project, [file_entry(".git/hooks/pre-commit", b"evil\n")],
          {bytes_digest(b"evil\n"): b"evil\n"})
    _, result = run_victim(project)
    assert "not among the step's declared outputs" in result["cache_miss_reason"]
    assert not (project / ".git").exists()


def test_symlink_planted_in_the_workspace_is_never_written_through(project: Path,
                                                                   tmp_path: Path) -> None:
    """The tar-cache attack: a link (from an earlier entry, or anyone) then a write through it."""
    write_pipeline(project, PIPELINE)
    outside = tmp_path / "outside"
    outside.mkdir()
    (project / "out").mkdir()
    (project / "out" / "evil").symlink_to(outside)
    plant(project, [file_entry("out/evil/pwned", b"evil\n")],
          {bytes_digest(b"evil\n"): b"evil\n"})
    _, result = run_victim(project)
    assert "symlink" in result["cache_miss_reason"]
    assert list(outside.iterdir()) == []


def test_entry_with_escaping_or_absolute_symlinks_is_rejected(project: Path) -> None:
    write_pipeline(project, PIPELINE)
    link = {"path": "out/l", "kind": "symlink", "mode": 0o777,
            "digest": bytes_digest(b"../../etc"), "size": 0, "target": "../../etc"}
    plant(project, [link], {})
    _, result = run_victim(project)
    assert "points outside the workspace" in result["cache_miss_reason"]
    assert not (project / "out" / "l").is_symlink()


def test_one_entry_cannot_write_below_its_own_symlink() -> None:
    files = [{"path": "out/l", "kind": "symlink", "mode": 0o777,
              "digest": bytes_digest(b"."), "size": 0, "target": "."},
             file_entry("out/l/x", b"x")]
    raw = json.dumps({"version": MANIFEST_VERSION, "key": "k", "step": "s", "files": files,
                      "log_digest": bytes_digest(b""), "log_size": 0, "exit_code": 0,
                      "wall_seconds": 0.0, "created_at": 0.0, "components": {}}).encode()
    with pytest.raises(CorruptEntry, match="below its own symlink"):
        parse(raw, key="k")


def test_inline_content_is_bounded_and_checked_before_it_is_trusted() -> None:
    from attest_cli.cache.manifest import INLINE_ENTRY_BYTES, INLINE_FILE_BYTES

    def raw(*files: dict) -> bytes:
        return json.dumps({"version": MANIFEST_VERSION, "key": "k", "step": "s",
                           "files": list(files), "log_digest": bytes_digest(b""),
                           "log_size": 0, "exit_code": 0, "wall_seconds": 0.0,
                           "created_at": 0.0, "components": {}}).encode()

    def inline(path: str, data: bytes, **over: object) -> dict:
        return {**file_entry(path, data), "inline": base64.b64encode(data).decode(), **over}

    ok = parse(raw(inline("a", b"hello")), key="k")
    assert ok.files[0].data == b"hello" and ok.blob_digests == set()
    big = b"x" * (INLINE_FILE_BYTES + 1)
    half = b"y" * INLINE_FILE_BYTES
    cases = {
        "not a file": raw({"path": "d", "kind": "dir", "mode": 0o755, "digest": "",
                           "size": 0, "inline": ""}),
        "over the file limit": raw(inline("a", big)),
        "over the entry limit": raw(*[inline(f"f{i}", half)
                                      for i in range(INLINE_ENTRY_BYTES // len(half) + 1)]),
        "longer than its size": raw(inline("a", b"hi", inline="aGk=" + "A" * 4000)),
        "not base64": raw(inline("a", b"hi", inline="a*==")),
        "another size": raw(inline("a", b"hi", size=3)),
        "another content": raw(inline("a", b"hi", inline="aG8=")),  # "ho"
        "not a string": raw(inline("a", b"hi", inline=[1, 2])),
    }
    for what, data in cases.items():
        with pytest.raises(CorruptEntry, match="inline content"):
            parse(data, key="k")
        del what


def test_restore_refuses_a_symlinked_parent_and_replaces_a_symlinked_file(tmp_path: Path
                                                                          ) -> None:
    root = tmp_path / "ws"
    (root / "out").mkdir(parents=True)
    secret = tmp_path / "secret.txt"
    secret.write_text("keep\n")
    (root / "out" / "file.txt").symlink_to(secret)  # a link where a file is restored
    data = b"restored\n"
    restore_files(root, [OutputFile(path="out/file.txt", kind="file", mode=0o600,
                                    digest=bytes_digest(data), size=len(data))],
                  lambda f: data)
    assert secret.read_text() == "keep\n"
    assert not (root / "out" / "file.txt").is_symlink()
    assert (root / "out" / "file.txt").read_bytes() == data
    assert oct((root / "out" / "file.txt").stat().st_mode & 0o777) == \
        oct(0o666 & ~process_umask())
    (root / "sub").symlink_to(tmp_path)
    with pytest.raises(UnsafeRestore):
        restore_files(root, [OutputFile(path="sub/x", kind="file", mode=0o644,
                                        digest=bytes_digest(b"x"), size=1)], lambda f: b"x")
    assert not (tmp_path / "x").exists()


def test_manifest_round_trips_and_rejects_another_key() -> None:
    m = Manifest(key="abc", step="s", files=[OutputFile(path="a/b", kind="file", mode=0o755,
                                                        digest=bytes_digest(b"1"), size=1)],
                 log_digest=bytes_digest(b""), log_size=0)
    again = parse(m.to_json(), key="abc")
    assert again.files == m.files and again.output_digest == m.output_digest
    with pytest.raises(CorruptEntry):
        parse(m.to_json(), key="other")


def test_encoding_is_length_prefixed_and_order_independent() -> None:
    assert encode([("a", "bc")]) != encode([("ab", "c")])
    assert encode([("x", "1"), ("y", "2")]) == encode([("y", "2"), ("x", "1")])
    env_a = key_env({"A": "1", "B": "2"}, {}, [], [], [], {})
    env_b = key_env({"B": "2", "A": "1"}, {}, [], [], [], {})
    a = build_parts(command="c", env=env_a, inputs=[], upstream={"u": "d", "v": "e"})
    b = build_parts(command="c", env=env_b, inputs=[], upstream={"v": "e", "u": "d"})
    assert a.key == b.key
    assert build_parts(command="c ", env=env_a, inputs=[], upstream={}).key != \
        build_parts(command="c", env=env_a, inputs=[], upstream={}).key


def test_unchanged_files_are_not_read_again_and_ctime_catches_sneaky_edits(tmp_path: Path
                                                                           ) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    old = time.time() - 3600
    for i in range(40):
        p = root / f"f{i}.txt"
        p.write_text(f"content {i}\n")
        os.utime(p, (old, old))
    index_path = tmp_path / "index.json"
    first = StatIndex(index_path)
    rels = sorted(p.name for p in root.iterdir())
    states = {s.path: s.digest for s in first.scan(root, rels)}
    assert first.hashed == 40
    first.save()
    second = StatIndex(index_path)
    assert {s.path: s.digest for s in second.scan(root, rels)} == states
    assert second.hashed == 0
    # same size, same mtime put back: only the ctime tells
    p = root / "f3.txt"
    p.write_text("CONTENT 3\n")
    os.utime(p, (old, old))
    third = StatIndex(index_path)
    changed = {s.path: s.digest for s in third.scan(root, rels)}
    assert third.hashed == 1
    assert changed["f3.txt"] != states["f3.txt"]
    assert changed["f4.txt"] == states["f4.txt"]


def test_expand_and_covers_agree_on_directories_globs_and_links(tmp_path: Path) -> None:
    from attest_cli.pathspec import covers, expand

    for rel in ("src/a.py", "src/.hidden.py", "src/sub/b.py", "src/sub/c.txt", "top.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    (tmp_path / "src" / "link").symlink_to("sub")
    everything = ["src/.hidden.py", "src/a.py", "src/link", "src/sub/b.py", "src/sub/c.txt"]
    assert expand(tmp_path, ["src/"]) == everything
    assert expand(tmp_path, ["src/**"]) == everything
    assert expand(tmp_path, ["src/**", "src/sub"]) == everything
    # a glob below a directory follows links to directories (Python glob semantics)
    assert expand(tmp_path, ["src/**/*.py"]) == ["src/a.py", "src/link/b.py", "src/sub/b.py"]
    assert expand(tmp_path, ["*.txt", "missing", "missing/**"]) == ["top.txt"]
    assert all(covers(["src/"], p) for p in everything)
    assert covers(["src/**/*.py"], "src/sub/b.py") and not covers(["src/**/*.py"], "src/x.txt")
    assert not covers(["src/"], "srcx/a") and not covers(["top.txt"], "top.txt2")


def test_special_files_are_skipped_and_the_helper_hashes_the_same(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from attest_cli.cache import parallel_hash

    root = tmp_path / "ws"
    root.mkdir()
    for i in range(20):
        (root / f"f{i:02d}").write_bytes(os.urandom(1000 + i))
    os.mkfifo(root / "pipe")  # reading it would block forever
    rels = sorted(p.name for p in root.iterdir())
    serial = StatIndex(None).scan(root, rels)
    assert [s.path for s in serial] == [r for r in rels if r != "pipe"]
    monkeypatch.setattr(parallel_hash, "MIN_ESTIMATE_MS", 0.0)  # a helper for any work
    monkeypatch.setattr(parallel_hash, "usable_cores", lambda: 2)  # even on 1 core
    shared = StatIndex(None).scan(root, rels)
    assert [(s.path, s.digest) for s in shared] == [(s.path, s.digest) for s in serial]
    assert serial[0].digest == bytes_digest((root / "f00").read_bytes())


def test_output_symlink_pointing_outside_is_not_stored(project: Path) -> None:
    write_pipeline(project, """
        name: links
        steps:
          link:
            run: mkdir -p out && ln -sfn /etc/hostname out/host
            outputs: [out/]
        """)
    report = project / ".attest" / "r.json"
    proc = attest("run", "--log-format", "json", "--report", str(report), cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "not cached: output symlink 'out/host' points to an absolute path" in proc.stderr
    assert cache_entries(project / ".attest" / "cache") == {}


def test_restored_modes_keep_only_the_executable_bit_and_honour_the_umask(project: Path
                                                                         ) -> None:
    """A poisoned entry's setuid/setgid/sticky and world-writable bits never reach the disk."""
    write_pipeline(project, PIPELINE)
    evil, plain = b"#!/bin/sh\necho owned\n", b"data\n"
    files = [{"path": "out", "kind": "dir", "mode": 0o7777, "digest": "", "size": 0,
              "target": None},
             {**file_entry("out/file.txt", evil), "mode": 0o4777},
             {**file_entry("out/plain.txt", plain), "mode": 0o2666},
             {"path": "out/sub", "kind": "dir", "mode": 0o1777, "digest": "", "size": 0,
              "target": None}]
    plant(project, files, {bytes_digest(evil): evil, bytes_digest(plain): plain})
    old = os.umask(0o027)
    try:
        _, result = run_victim(project)
        inode = (project / "out" / "file.txt").stat().st_ino
        _, again = run_victim(project)
    finally:
        os.umask(old)
    assert result["status"] == "cached"
    out = project / "out"
    assert (out / "file.txt").read_bytes() == evil
    assert oct((out / "file.txt").stat().st_mode & 0o7777) == oct(0o750)
    assert oct((out / "plain.txt").stat().st_mode & 0o7777) == oct(0o640)
    assert oct((out / "sub").stat().st_mode & 0o7777) == oct(0o750)
    assert oct(out.stat().st_mode & 0o7777) == oct(0o750)
    # the report (what a receipt is built from) names the content, and a second run leaves
    # the sanitised files alone instead of "repairing" them back to the manifest's modes
    assert {o["path"] for o in result["outputs"]} == {"out/file.txt", "out/plain.txt"}
    assert again["status"] == "cached"
    assert (out / "file.txt").stat().st_ino == inode
    assert oct((out / "file.txt").stat().st_mode & 0o7777) == oct(0o750)


def test_restore_never_widens_an_existing_directory(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "out").mkdir(parents=True)
    (root / "out").chmod(0o700)
    restore_files(root, [OutputFile(path="out", kind="dir", mode=0o777),
                         OutputFile(path="out/x", kind="file", mode=0o6777,
                                    digest=bytes_digest(b"x"), size=1)], lambda f: b"x")
    assert oct((root / "out").stat().st_mode & 0o7777) == oct(0o700)
    assert not (root / "out" / "x").stat().st_mode & 0o7022


def test_a_file_hashed_at_another_size_than_its_stat_is_hashed_whole(tmp_path: Path) -> None:
    """One read of the stat-ed size is taken as the whole file only when it returns exactly
    that many bytes: a file that grew or shrank since is read to its end."""
    from attest_cli.cache.statindex import _hash

    path = tmp_path / "f"
    path.write_bytes(b"0123456789" * 1000)
    whole = bytes_digest(path.read_bytes())
    assert _hash(str(path), 10) == whole  # grew since the stat
    assert _hash(str(path), 50_000) == whole  # shrank since the stat
    assert _hash(str(path), 10_000) == whole


def test_an_input_named_in_bytes_that_are_not_utf8_is_cached_and_restored(project: Path
                                                                          ) -> None:
    """Such a name becomes lone surrogates in Python; orjson refuses those, and attest's own
    files (stat index, manifest, records, report) once failed the whole run with them."""
    (project / "data").mkdir()
    (project / os.fsdecode(b"data/caf\xe9.txt")).write_bytes(b"latin-1 name\n")
    old = time.time() - 60  # settled: remembered by the stat index and the fresh record
    for p in (project / "data").iterdir():
        os.utime(p, (old, old))
    write_pipeline(project, """
        name: names
        steps:
          cat:
            run: cat data/* > out.txt
            inputs: [data/]
            outputs: [out.txt]
        """)
    report = project / ".attest" / "r.json"
    first = attest("run", "--report", str(report), cwd=project)
    assert first.returncode == 0, first.stderr
    assert "not cached" not in first.stderr and "failed" not in first.stderr
    assert json.loads(report.read_text())["steps"][0]["status"] == "success"
    (project / "out.txt").unlink()
    again = attest("run", "--report", str(report), cwd=project)
    assert again.returncode == 0, again.stderr
    assert json.loads(report.read_text())["steps"][0]["status"] == "cached"
    assert (project / "out.txt").read_bytes() == b"latin-1 name\n"


@pytest.mark.parametrize("pattern", ["link", "link/", "link/**", "link/**/*.txt", "tree"])
def test_inputs_reaching_too_many_paths_are_refused_not_walked_to_the_end(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pattern: str) -> None:
    """``inputs: [link]`` with the link at ``/`` would hash the whole file system: past
    MAX_EXPANDED paths the expansion stops with one clear error (a lookup then fails and
    the step runs without the cache)."""
    from attest_cli import pathspec
    from attest_cli.pathspec import TooManyPaths, expand

    outside = tmp_path / "outside"
    for d in range(4):
        (outside / f"d{d}").mkdir(parents=True)
        for f in range(5):
            (outside / f"d{d}" / f"f{f}.txt").write_text("x")
    root = tmp_path / "ws"
    root.mkdir()
    (root / "link").symlink_to(outside)
    (root / "tree").symlink_to(outside)
    monkeypatch.setattr(pathspec, "MAX_EXPANDED", 12)
    with pytest.raises(TooManyPaths, match="more than 12 paths"):
        expand(root, [pattern], follow_links=True)
    monkeypatch.setattr(pathspec, "MAX_EXPANDED", 1000)
    assert len(expand(root, [pattern], follow_links=True)) >= 20
