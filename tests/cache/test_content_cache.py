"""ContentCache in-process: store, lookup, restore and miss reasons on a temporary directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from attest_cli.cache.backends.local import LocalBackend
from attest_cli.cache.content_cache import ContentCache
from attest_cli.cache.statindex import StatIndex
from attest_cli.engine.interfaces import StepContext
from attest_cli.engine.run_report import StepResult
from attest_cli.pipeline.model import Pipeline, Step
from tests.support import delete_cache_entry

pytestmark = pytest.mark.unit  # in-process: the fast layer (make test-unit)

STEP = Step(name="build", run="cp src.txt out/x.txt", inputs=("src.txt",),
            outputs=("out/x.txt",))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "src.txt").write_text("v1\n")
    return root


@pytest.fixture
def cache(tmp_path: Path) -> ContentCache:
    return ContentCache(local=LocalBackend(tmp_path / "cache"), index=StatIndex(None))


def context(root: Path, step: Step = STEP) -> StepContext:
    pipeline = Pipeline(name="p", path=root / "attest.yaml", root=root, steps={step.name: step})
    return StepContext(run_id="r1", pipeline=pipeline, step=step, env={"PATH": "/bin"},
                       workdir=root, upstream={})


def build(root: Path, log: Path, text: str = "v1\n") -> None:
    """What the step would do: write its output and its log."""
    (root / "out").mkdir(exist_ok=True)
    (root / "out" / "x.txt").write_text(text)
    log.write_text("copied\n")


def store(cache: ContentCache, root: Path, log: Path):  # type: ignore[no-untyped-def]
    ctx = context(root)
    decision = cache.lookup(ctx)
    build(root, log)
    return decision, cache.store(ctx, decision, StepResult(name="build", command=STEP.run,
                                                           exit_code=0), log)


def test_first_lookup_misses_then_store_then_hit_restores(cache: ContentCache, root: Path,
                                                           tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    miss, stored = store(cache, root, log)
    assert (miss.hit, miss.backend, miss.reason) == (False, "local",
                                                      "no earlier entry for this step")
    assert miss.inputs and miss.inputs[0]["path"] == "src.txt"
    assert stored.stored and stored.bytes > 0
    assert stored.outputs == [{"path": "out/x.txt", "hash": stored.outputs[0]["hash"]}]

    (root / "out" / "x.txt").unlink()
    hit = cache.lookup(context(root))
    assert (hit.hit, hit.key, hit.log_text) == (True, miss.key, "copied\n")
    assert hit.output_digest == stored.output_digest
    assert (root / "out" / "x.txt").read_text() == "v1\n"
    assert cache.counts["local"]["hits"] == 1
    assert cache.counts["local"]["misses"] == 1


def test_a_changed_input_misses_and_says_which(cache: ContentCache, root: Path,
                                               tmp_path: Path) -> None:
    first, _ = store(cache, root, tmp_path / "build.log")
    (root / "src.txt").write_text("v2\n")
    again = cache.lookup(context(root))
    assert not again.hit
    assert again.key != first.key
    assert again.reason is not None and "src.txt" in again.reason


def test_a_restored_output_with_changed_content_is_rewritten(cache: ContentCache, root: Path,
                                                             tmp_path: Path) -> None:
    store(cache, root, tmp_path / "build.log")
    (root / "out" / "x.txt").write_text("tampered\n")
    assert cache.lookup(context(root)).hit
    assert (root / "out" / "x.txt").read_text() == "v1\n"


def test_a_missing_declared_output_is_not_stored(cache: ContentCache, root: Path,
                                                 tmp_path: Path) -> None:
    ctx = context(root)
    decision = cache.lookup(ctx)
    log = tmp_path / "build.log"
    log.write_text("")
    outcome = cache.store(ctx, decision, StepResult(name="build", command=STEP.run), log)
    assert (outcome.stored, outcome.reason) == (False,
                                                "declared output out/x.txt was not produced")
    assert not cache.lookup(ctx).hit


def test_an_input_changed_while_the_step_ran_is_not_stored(cache: ContentCache, root: Path,
                                                           tmp_path: Path) -> None:
    ctx = context(root)
    decision = cache.lookup(ctx)
    build(root, tmp_path / "build.log")
    (root / "src.txt").write_text("edited meanwhile, longer\n")
    outcome = cache.store(ctx, decision, StepResult(name="build", command=STEP.run),
                          tmp_path / "build.log")
    assert (outcome.stored, outcome.reason) == (False, "input src.txt changed while the step ran")


@pytest.mark.parametrize(("change", "named"), [
    (lambda src: (src / "sub" / "new.txt").write_text("n\n"), "src/sub/new.txt"),
    (lambda src: (src / "sub" / "empty").mkdir(), "src/sub/empty"),
    (lambda src: (src / "a.txt").unlink(), "src/a.txt"),
    (lambda src: (src / "b.txt").symlink_to("a.txt"), "src/b.txt"),
])
def test_a_file_added_or_removed_in_an_input_tree_while_the_step_ran_is_not_stored(
        cache: ContentCache, root: Path, tmp_path: Path, change: Any, named: str) -> None:
    """The store learns that the trees still hold the key's files from their vouchers
    (no second walk) when it can, and from a walk when it cannot (a link appeared)."""
    src = root / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("a\n")
    (src / "sub" / "c.txt").write_text("c\n")
    step = Step(name="build", run="cp src.txt out/x.txt", inputs=("src/",),
                outputs=("out/x.txt",))
    ctx = context(root, step)
    decision = cache.lookup(ctx)
    build(root, tmp_path / "build.log")
    change(src)
    outcome = cache.store(ctx, decision, StepResult(name="build", command=step.run),
                          tmp_path / "build.log")
    assert (outcome.stored, outcome.reason) == (False, f"input {named} changed while the "
                                                       "step ran")


def test_entries_over_max_entry_size_are_not_stored(root: Path, tmp_path: Path) -> None:
    cache = ContentCache(local=LocalBackend(tmp_path / "cache"), index=StatIndex(None),
                         max_entry_size=2)
    _, outcome = store(cache, root, tmp_path / "build.log")
    assert not outcome.stored
    assert outcome.reason == "output out/x.txt is larger than cache.max_entry_size (2 bytes)"


def test_a_big_pipeline_lists_the_entries_once_and_still_sees_an_eviction(
        root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from attest_cli.cache import content_cache, fresh

    monkeypatch.setattr(content_cache, "LIST_ENTRIES_FROM", 1)  # "big" from one step
    monkeypatch.setattr(fresh, "RACY_SECONDS", -1.0)  # ctimes are now: settled at once

    def new_cache() -> ContentCache:
        return ContentCache(local=LocalBackend(tmp_path / "cache"), index=StatIndex(None))

    first, ctx, log = new_cache(), context(root), tmp_path / "build.log"
    decision = first.lookup(ctx)
    build(root, log)
    assert first.store(ctx, decision, StepResult(name="build", command=STEP.run, exit_code=0),
                       log).stored
    first.save_fresh({"build": True})
    first.close()  # its rows committed, as a run's are when it ends

    asked: list[str] = []
    real = LocalBackend.contains
    monkeypatch.setattr(LocalBackend, "contains",
                        lambda self, key: asked.append(key) or real(self, key))
    assert new_cache().fresh(context(root)) is not None
    assert asked == []  # answered by the listing
    monkeypatch.setattr(content_cache, "LIST_ENTRIES_PER_STEP", 0)  # "too many to read"
    assert new_cache().fresh(context(root)) is not None
    assert asked == [f"entries/{decision.key}"]  # asked by name instead
    delete_cache_entry(tmp_path / "cache", decision.key)
    assert new_cache().fresh(context(root)) is None


def test_a_fifo_among_the_inputs_does_not_stop_the_step_being_stored(
        cache: ContentCache, root: Path, tmp_path: Path) -> None:
    """The scan leaves a FIFO out of the key; the store once counted it as an input that
    appeared while the step ran, so such a step was never stored. A regular file that
    appears is still a change."""
    (root / "src").mkdir()
    (root / "src" / "a.txt").write_text("a\n")
    os.mkfifo(root / "src" / "pipe")
    step = Step(name="build", run="cp src.txt out/x.txt", inputs=("src/",),
                outputs=("out/x.txt",))
    ctx, log = context(root, step), tmp_path / "build.log"
    decision = cache.lookup(ctx)
    assert [i["path"] for i in decision.inputs] == ["src/a.txt"]
    build(root, log)
    outcome = cache.store(ctx, decision, StepResult(name="build", command=step.run), log)
    assert (outcome.stored, outcome.reason) == (True, None)
    again = cache.lookup(ctx)
    assert again.hit
    build(root, log)
    (root / "src" / "b.txt").write_text("b\n")
    outcome = cache.store(ctx, again, StepResult(name="build", command=step.run), log)
    assert outcome.reason == "input src/b.txt changed while the step ran"


def test_a_miss_over_many_inputs_starts_the_store_check_early_and_never_leaks_it(
        cache: ContentCache, root: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The helper that checks the inputs after the step starts at the miss (its start-up
    overlaps the step); one whose step is never stored stops when the decision is dropped,
    and at most EARLY_CHECKS wait at once."""
    from attest_cli.cache import content_cache, parallel_restat

    monkeypatch.setattr(parallel_restat, "SHARE_FROM", 10)
    monkeypatch.setattr(parallel_restat, "usable_cores", lambda: 2)
    (root / "src").mkdir()
    for i in range(40):
        (root / "src" / f"f{i:02d}.txt").write_text(f"{i}\n")
    step = Step(name="build", run="cp src.txt out/x.txt", inputs=("src/",),
                outputs=("out/x.txt",))
    ctx, log = context(root, step), tmp_path / "build.log"

    decision = cache.lookup(ctx)
    check = decision.state.check  # type: ignore[attr-defined]
    assert check is not None and check.proc.poll() is None
    build(root, log)
    (root / "src" / "f03.txt").write_text("changed while the step ran\n")
    outcome = cache.store(ctx, decision, StepResult(name="build", command=step.run), log)
    assert outcome.reason == "input src/f03.txt changed while the step ran"
    assert check.proc is None  # used and reaped by the store

    # a step that fails is never stored: its helper stops with its decision
    failed = cache.lookup(ctx)
    proc = failed.state.check.proc  # type: ignore[attr-defined]
    del failed
    assert proc.returncode is not None

    kept = [cache.lookup(ctx) for _ in range(content_cache.EARLY_CHECKS + 1)]
    checks = [d.state.check for d in kept]  # type: ignore[attr-defined]
    assert checks[-1] is None and all(c is not None for c in checks[:-1])
    procs = [c.proc for c in checks[:-1]]
    cache.close()  # the end of the run stops those still waiting
    assert all(p.returncode is not None for p in procs)


def test_concurrent_misses_start_no_more_early_checks_than_the_cap(
        cache: ContentCache, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from attest_cli.cache import content_cache, parallel_restat

    monkeypatch.setattr(parallel_restat, "SHARE_FROM", 10)
    monkeypatch.setattr(parallel_restat, "usable_cores", lambda: 2)
    (root / "src").mkdir()
    for i in range(40):
        (root / "src" / f"f{i:02d}.txt").write_text(f"{i}\n")
    step = Step(name="build", run="true", inputs=("src/",), outputs=("out/x.txt",))
    ctx = context(root, step)
    start = threading.Barrier(6)
    decisions: list[Any] = []

    def miss() -> None:
        start.wait()
        decisions.append(cache.lookup(ctx))

    threads = [threading.Thread(target=miss) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    started = [d.state.check for d in decisions if d.state.check is not None]
    assert 1 <= len(started) <= content_cache.EARLY_CHECKS
    cache.close()
    assert all(c.proc is None for c in started)
