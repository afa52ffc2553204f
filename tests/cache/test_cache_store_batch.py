"""Issue 14: storing a step is one manifest write and one record write, no fsync per step;
the run ends with one file-system sync. A crash never leaves an entry that restores wrong."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from attest_cli.cache import content_cache
from attest_cli.cache.backends.local import LocalBackend
from attest_cli.cache.content_cache import ContentCache
from attest_cli.cache.statindex import StatIndex
from attest_cli.engine.interfaces import StepContext
from attest_cli.engine.run_report import StepResult
from attest_cli.pipeline.model import Pipeline, Step
from tests.support import cache_entries, write_cache_entry


def _setup(tmp_path: Path, n: int) -> tuple[ContentCache, Pipeline]:
    root = tmp_path / "proj"
    root.mkdir()
    steps = {f"s{i}": Step(name=f"s{i}", run=f"echo {i} > out{i}.txt", outputs=(f"out{i}.txt",))
             for i in range(n)}
    pipeline = Pipeline(name="p", path=root / "attest.yaml", root=root, steps=steps)
    cache = ContentCache(local=LocalBackend(tmp_path / "cache"), index=StatIndex(None))
    return cache, pipeline


def _store_all(cache: ContentCache, pipeline: Pipeline, tmp_path: Path) -> None:
    for i, step in enumerate(pipeline.steps.values()):
        ctx = StepContext(run_id="r", pipeline=pipeline, step=step, env={},
                          workdir=pipeline.root, upstream={})
        decision = cache.lookup(ctx)
        assert not decision.hit
        (pipeline.root / f"out{i}.txt").write_text(f"{i}\n")
        log = tmp_path / f"s{i}.log"
        if i % 2:
            log.write_text(f"said {i}\n")  # every other step printed something
        result = StepResult(name=step.name, command=step.run, status="success", exit_code=0)
        assert cache.store(ctx, decision, result, log).stored


def test_storing_steps_syncs_nothing_per_step_and_once_per_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache, pipeline = _setup(tmp_path, 6)
    fsyncs: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsyncs.append(fd), real_fsync(fd))[1])
    renames: list[str] = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b, **kw: (renames.append(str(b)),
                                                           real_replace(a, b, **kw))[1])
    syncs: list[Path] = []
    rows_at_sync: list[int] = []  # the rows in the table file when it is synced

    def sync(path: Path) -> None:
        syncs.append(path)
        rows_at_sync.append(len(cache_entries(path)))

    monkeypatch.setattr(content_cache, "sync_filesystem", sync)
    _store_all(cache, pipeline, tmp_path)
    assert fsyncs == []
    manifests = [r for r in renames if "/entries/" in r]
    records = [r for r in renames if "/steps/" in r]
    assert manifests == [] and records == []  # no file, no rename per stored step
    assert syncs == []
    cache.close()
    assert len(cache_entries(cache.local.root)) == 6  # a row of the entry table each
    assert syncs == [cache.local.root]  # one sync when the run's cache closes
    assert rows_at_sync == [6]  # the rows waiting in memory were written before it
    records = [r for r in renames if "/steps/" in r]
    assert len(records) == 1  # the pipeline's record map, once per run


def test_flush_writes_the_indexes_and_syncs_in_the_background_which_close_awaits(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once every step has ended, the sync overlaps the rest of the run's end (report,
    history, receipt): started by flush on a thread of its own, joined by close, once."""
    import threading

    cache, pipeline = _setup(tmp_path, 3)
    _store_all(cache, pipeline, tmp_path)
    release = threading.Event()
    syncs: list[tuple[Path, str]] = []

    def slow_sync(path: Path) -> None:
        syncs.append((path, threading.current_thread().name))
        release.wait(10)

    monkeypatch.setattr(content_cache, "sync_filesystem", slow_sync)
    records = cache.local.root / "steps"
    cache.flush()  # returns while the sync is still running
    assert syncs == [(cache.local.root, "attest-sync")]
    assert list(records.iterdir())  # the records were written before the sync began
    assert len(cache_entries(cache.local.root)) == 3  # and the entry rows
    closer = threading.Thread(target=cache.close)
    closer.start()
    closer.join(0.2)
    assert closer.is_alive()  # close waits for the sync
    release.set()
    closer.join(10)
    assert not closer.is_alive() and len(syncs) == 1  # and does not sync a second time


def test_entries_stored_without_per_step_sync_restore_and_explain(tmp_path: Path) -> None:
    cache, pipeline = _setup(tmp_path, 3)
    _store_all(cache, pipeline, tmp_path)
    cache.close()
    for i, step in enumerate(pipeline.steps.values()):
        (pipeline.root / f"out{i}.txt").unlink()
        ctx = StepContext(run_id="r2", pipeline=pipeline, step=step, env={},
                          workdir=pipeline.root, upstream={})
        decision = cache.lookup(ctx)
        assert decision.hit
        assert (pipeline.root / f"out{i}.txt").read_text() == f"{i}\n"
        assert decision.log_text == (f"said {i}\n" if i % 2 else "")
        assert cache.explain(pipeline, step, {}).previous is not None


def test_a_read_marks_an_object_used_at_most_once_an_hour(tmp_path: Path) -> None:
    import time

    from attest_cli.cache.backends.local import TOUCH_INTERVAL_SECONDS

    local = LocalBackend(tmp_path / "cache")
    local.put("entries/fresh", b"{}")
    local.put("entries/stale", b"{}")
    local.put("blobs/ab/blob", b"x")
    local.flush()  # the rows written (they wait in memory up to 20 ms)
    blob = local.root / "blobs" / "ab" / "blob"
    recent = time.time() - 60
    old = time.time() - TOUCH_INTERVAL_SECONDS - 60
    write_cache_entry(local.root, "fresh", used=recent)
    write_cache_entry(local.root, "stale", used=old)
    os.utime(blob, (old, old))
    assert local.get("entries/fresh") == b"{}" and local.get("entries/stale") == b"{}"
    assert local.get("blobs/ab/blob") == b"x"
    used = {o.key: o.last_used for o in local.objects()}
    assert used["entries/fresh"] == recent  # used a minute ago: no write for this read
    assert used["entries/stale"] > time.time() - 60  # marked used now
    assert blob.stat().st_mtime > time.time() - 60  # a blob file: its mtime
    write_cache_entry(local.root, "stale", used=old)
    assert local.peek("entries/stale") == b"{}"  # maintenance reads: not a use
    assert {o.key: o.last_used for o in local.objects()}["entries/stale"] == old


def test_restoring_nothing_opens_nothing(tmp_path: Path) -> None:
    from attest_cli.cache.restore import restore_files

    restore_files(tmp_path / "not-there", [], lambda f: b"")  # no workspace is opened


def test_storing_reads_each_output_once_and_stores_its_digest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store keeps the bytes it read and digests them: hashing the outputs beforehand
    too (the stat index cannot keep a file that new) was a second read of every output."""
    cache, pipeline = _setup(tmp_path, 3)
    opened: list[str] = []
    real_open = os.open

    def counting_open(path: str, *args: object, **kwargs: object) -> int:
        opened.append(str(path))
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", counting_open)
    _store_all(cache, pipeline, tmp_path)
    for i in range(3):
        assert opened.count(str(pipeline.root / f"out{i}.txt")) == 1
    cache.close()
    from attest_cli.digest import bytes_digest
    restored = cache.lookup(StepContext(run_id="r2", pipeline=pipeline, step=pipeline.steps["s1"],
                                        env={}, workdir=pipeline.root, upstream={}))
    assert restored.hit
    assert restored.outputs == [{"path": "out1.txt", "hash": bytes_digest(b"1\n")}]


@pytest.mark.unit
def test_outputs_described_without_contents_differ_only_in_file_digests(tmp_path: Path) -> None:
    from attest_cli.cache.manifest import OutputFile
    from attest_cli.cache.outputs import describe

    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "a.txt").write_text("a")
    (tmp_path / "d" / "sub" / "b.txt").write_text("b")
    (tmp_path / "f.txt").write_text("f")
    (tmp_path / "link").symlink_to("f.txt")
    patterns = ["d", "f.txt", "link", "d/**/*.txt", "missing.txt"]
    full, missing = describe(tmp_path, patterns, StatIndex(None))
    bare, missing_bare = describe(tmp_path, patterns, StatIndex(None), contents=False)
    assert missing == missing_bare == ["missing.txt"]
    assert [OutputFile(path=f.path, kind=f.kind, mode=f.mode, digest="", size=f.size,
                       target=f.target, data=f.data) if f.kind == "file" else f
            for f in full] == bare
    assert all(f.digest == "" for f in bare if f.kind == "file")
    assert {f.kind for f in bare} == {"dir", "file", "symlink"}
