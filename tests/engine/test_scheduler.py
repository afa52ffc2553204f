"""The scheduler in-process: order, parallel slots, failures, timeouts, interrupts, cache.

Every test runs on the fakes of ``attest_cli.engine.testing``: no process and no sleep.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest

from attest_cli.engine.events import CacheChecked, CacheStored, StepFinished, StepOutput
from attest_cli.engine.scheduler import LANES_PER_SLOT
from attest_cli.engine.testing import FakeStepCache, Script
from attest_cli.pipeline.model import Step
from tests.engine.harness import Harness, MakeScheduler

pytestmark = pytest.mark.unit  # in-process: the fast layer (make test-unit)


def step(name: str, *needs: str, **kw: object) -> Step:
    return Step(name=name, run=f"echo {name}", needs=needs, **kw)  # type: ignore[arg-type]


def statuses(h: Harness) -> dict[str, str]:
    return {r.name: r.status for r in h.report.steps}


def test_steps_start_in_dependency_then_file_order(make_scheduler: MakeScheduler) -> None:
    h = make_scheduler([step("c", "a"), step("a"), step("b"), step("d", "c", "b")])
    h.scheduler.run()
    # a is the first ready step; once it is done, c (earlier in the file) goes before b
    assert h.runner.started == ["a", "c", "b", "d"]
    assert h.events.started() == ["a", "c", "b", "d"]
    assert statuses(h) == {"c": "success", "a": "success", "b": "success", "d": "success"}
    assert [r.name for r in h.report.steps] == ["c", "a", "b", "d"]  # the pipeline's order
    assert h.report.steps[3].needs == ["c", "b"]


def test_environment_names_the_run_and_step(make_scheduler: MakeScheduler) -> None:
    h = make_scheduler([step("a", env={"X": "1"})])
    h.scheduler.run()
    env = h.runner.requests[0].env
    assert env["ATTEST_RUN_ID"] == "r1"
    assert env["ATTEST_STEP"] == "a"
    assert env["ATTEST_PIPELINE"] == "p"
    assert env["X"] == "1"
    assert env["PATH"] == "/bin"


def test_durations_and_stamps_come_from_the_clock(make_scheduler: MakeScheduler) -> None:
    h = make_scheduler([step("a"), step("b", "a")], {"a": Script(duration=2.5),
                                                      "b": Script(duration=4.0)})
    start = h.clock.time()
    h.scheduler.run()
    a, b = h.report.steps
    assert (a.started_at, a.finished_at, a.wall_seconds) == (start, start + 2.5, 2.5)
    assert (b.started_at, b.finished_at, b.wall_seconds) == (start + 2.5, start + 6.5, 4.0)


def test_parallel_steps_use_at_most_parallel_slots(make_scheduler: MakeScheduler) -> None:
    held = Script(held=True)
    h = make_scheduler([step("a"), step("b"), step("c")], {"a": held, "b": held, "c": held},
                       parallel=2)
    worker = threading.Thread(target=h.scheduler.run)
    worker.start()
    h.runner.wait_started("a", "b")
    assert "c" not in h.runner.started  # both slots are busy
    h.runner.release("b")
    h.runner.wait_started("c")
    h.runner.release("a", "c")
    worker.join(5)
    assert not worker.is_alive()
    assert h.runner.max_running == 2
    slots = {r.name: r.slot for r in h.report.steps}
    assert slots == {"a": 0, "b": 1, "c": 1}  # c took the slot b freed
    assert h.events.of(StepFinished)[0].result.name == "b"


def test_failure_stops_new_steps_and_skips_the_rest(make_scheduler: MakeScheduler) -> None:
    h = make_scheduler([step("a"), step("b"), step("c", "b")], {"a": Script(exit_code=3)})
    h.scheduler.run()
    assert h.runner.started == ["a"]
    assert statuses(h) == {"a": "failure", "b": "skipped", "c": "skipped"}
    a, b, c = h.report.steps
    assert (a.exit_code, a.reason) == (3, "exit code 3")
    assert b.reason == "not started: step 'a' failed"
    assert c.reason == "not started: step 'a' failed"


def test_keep_going_runs_independent_steps_and_skips_dependents(
        make_scheduler: MakeScheduler) -> None:
    h = make_scheduler([step("a"), step("b", "a"), step("c", "b"), step("d")],
                       {"a": Script(exit_code=1)}, keep_going=True)
    h.scheduler.run()
    assert h.runner.started == ["a", "d"]
    assert statuses(h) == {"a": "failure", "b": "skipped", "c": "skipped", "d": "success"}
    assert h.report.steps[1].reason == "needs 'a', which did not succeed"
    assert h.report.steps[2].reason == "needs 'b', which did not succeed"
    # every step is published exactly once
    assert sorted(h.events.finished()) == ["a", "b", "c", "d"]
    assert len(h.events.of(StepFinished)) == 4


def test_timeout_fails_the_step_with_its_reason(make_scheduler: MakeScheduler) -> None:
    h = make_scheduler([step("slow", timeout=2.0), step("next", "slow")],
                       {"slow": Script(hangs=True)})
    h.scheduler.run()
    slow, nxt = h.report.steps
    assert (slow.status, slow.timed_out, slow.reason) == ("failure", True, "timed out after 2s")
    assert (slow.exit_code, slow.signal) == (128 + signal.SIGTERM, signal.SIGTERM)
    assert slow.wall_seconds == 2.0
    assert h.runner.requests[0].timeout == 2.0
    assert nxt.status == "skipped"


def test_default_timeout_applies_to_steps_without_their_own(
        make_scheduler: MakeScheduler) -> None:
    h = make_scheduler([step("a"), step("b", timeout=9.0)], keep_going=True, timeout=1.5)
    h.scheduler.run()
    assert [r.timeout for r in h.runner.requests] == [1.5, 9.0]


def test_interrupt_kills_running_steps_and_skips_the_rest(
        make_scheduler: MakeScheduler) -> None:
    h = make_scheduler([step("a"), step("b"), step("c")],
                       {"a": Script(hangs=True), "b": Script(hangs=True)}, parallel=2)
    worker = threading.Thread(target=h.scheduler.run)
    worker.start()
    h.runner.wait_started("a", "b")
    h.scheduler.interrupt(signal.SIGINT)
    worker.join(5)
    assert not worker.is_alive()
    assert h.scheduler.interrupted == signal.SIGINT
    assert h.runner.terminated.is_set()
    a, b, c = h.report.steps
    assert (a.status, a.reason, a.signal) == ("failure", "killed by interrupt", signal.SIGTERM)
    assert (b.status, b.reason) == ("failure", "killed by interrupt")
    assert (c.status, c.reason) == ("skipped", "not started: the run was interrupted")


def test_a_runner_error_is_reported_as_a_failed_step(make_scheduler: MakeScheduler) -> None:
    h = make_scheduler([step("a")], {"a": Script(error=RuntimeError("boom"))})
    h.scheduler.run()
    (a,) = h.report.steps
    assert (a.status, a.exit_code, a.reason) == ("failure", None, "internal error: boom")


def test_output_lines_are_masked_logged_and_published(make_scheduler: MakeScheduler,
                                                      tmp_path: Path) -> None:
    from attest_cli.engine.masking import SecretMasker

    h = make_scheduler([step("a")], {"a": Script(output=("hello", "token s3cr3t"))})
    h.scheduler.masker = SecretMasker(["s3cr3t"])
    h.scheduler.run()
    lines = [e.line for e in h.events.of(StepOutput)]
    assert lines == ["hello", "token ***"]
    assert (tmp_path / "logs" / "a.log").read_text() == "hello\ntoken ***\n"


def test_cache_hit_replays_the_log_and_skips_the_runner(make_scheduler: MakeScheduler,
                                                        tmp_path: Path) -> None:
    cache = FakeStepCache(hits={"a": "from cache\n"})
    h = make_scheduler([step("a"), step("b", "a")], {"b": Script(output=("built",))},
                       cache=cache)
    h.scheduler.run()
    assert h.runner.started == ["b"]
    a, b = h.report.steps
    assert (a.status, a.cache_hit, a.cache_key, a.exit_code) == ("cached", True, "key:a", 0)
    assert a.output_digest == "digest:a"
    assert (tmp_path / "logs" / "a.log").read_text() == "from cache\n"
    assert (b.status, b.cache_hit, b.cache_miss_reason) == ("success", False, "no entry")
    assert b.output_digest == "digest:b"
    assert cache.looked_up == ["a", "b"]
    assert cache.stored == {"b": "built\n"}
    checked = {e.step: e.hit for e in h.events.of(CacheChecked)}
    assert checked == {"a": True, "b": False}
    assert [(e.step, e.bytes) for e in h.events.of(CacheStored)] == [("b", 6)]
    assert [e.line for e in h.events.of(StepOutput) if e.step == "a"] == ["from cache"]


def test_up_to_date_steps_are_decided_on_the_scheduler_thread(
        make_scheduler: MakeScheduler, tmp_path: Path) -> None:
    """A step the cache vouches for is replayed without a worker or a lookup; its events
    are the ones a hit has, in the same order; a step it does not vouch for is looked up."""
    cache = FakeStepCache(fresh_steps={"a": "kept\n", "b": ""})
    h = make_scheduler([step("a"), step("b", "a"), step("c", "b"), step("d", cache=False)],
                       cache=cache)
    h.scheduler.run()
    assert h.runner.started == ["c", "d"]
    assert cache.looked_up == ["c"]  # d does not use the cache at all
    assert statuses(h) == {"a": "cached", "b": "cached", "c": "success", "d": "success"}
    a = h.report.steps[0]
    assert (a.cache_hit, a.cache_key, a.output_digest, a.needs) == (True, "key:a", "digest:a",
                                                                     [])
    assert (tmp_path / "logs" / "a.log").read_text() == "kept\n"
    assert h.report.steps[1].log_file is None  # nothing to replay, no empty log file
    checks = [(e.step, e.hit, e.up_to_date) for e in h.events.of(CacheChecked)]
    assert checks == [("a", True, True), ("b", True, True), ("c", False, False)]
    kinds = [type(e).__name__ for e in h.events.events
             if getattr(e, "step", None) == "a" or getattr(getattr(e, "result", None),
                                                           "name", None) == "a"]
    assert kinds == ["StepStarted", "CacheChecked", "StepOutput", "StepFinished"]


def _uploads_seen(h_box: list[Harness], seen: dict[str, bool]):  # type: ignore[no-untyped-def]
    """A store hook: does the third step's command start while this store is busy?"""
    def on_store(name: str) -> None:
        if name in ("a", "b"):
            try:
                h_box[0].runner.wait_started("c", timeout=5)
                seen[name] = True
            except AssertionError:
                seen[name] = False
    return on_store


def test_a_step_uploading_its_outputs_does_not_hold_a_command_slot(
        make_scheduler: MakeScheduler) -> None:
    box: list[Harness] = []
    seen: dict[str, bool] = {}
    cache = FakeStepCache(networked=True, on_store=_uploads_seen(box, seen))
    box.append(make_scheduler([step("a"), step("b"), step("c")], parallel=2, cache=cache))
    h = box[0]
    h.scheduler.run()
    assert seen == {"a": True, "b": True}  # c ran while both uploads were in flight
    assert statuses(h) == {"a": "success", "b": "success", "c": "success"}
    assert h.runner.max_running <= 2  # -j still bounds the commands
    assert set(cache.stored) == {"a", "b", "c"}
    slots = {r.name: r.slot for r in h.report.steps}
    assert len(set(slots.values())) == 3  # three steps in flight: three lanes


def test_remote_lookups_overlap_beyond_the_command_slots(make_scheduler: MakeScheduler
                                                         ) -> None:
    lock = threading.Condition()
    inflight = peak = 0

    def on_lookup(name: str) -> None:  # held until four lookups are in flight together
        nonlocal inflight, peak
        with lock:
            inflight += 1
            peak = max(peak, inflight)
            lock.notify_all()
            lock.wait_for(lambda: peak >= 4, timeout=5)
            inflight -= 1

    names = [f"s{i}" for i in range(10)]
    cache = FakeStepCache(networked=True, hits={n: "" for n in names[:6]}, on_lookup=on_lookup)
    h = make_scheduler([step(n) for n in names], parallel=2, cache=cache)
    h.scheduler.run()
    assert peak >= 4  # a remote lookup waits on the network, not on a command slot
    assert h.runner.max_running <= 2  # -j still bounds the commands
    assert statuses(h) == {n: "cached" if i < 6 else "success" for i, n in enumerate(names)}
    assert {r.slot for r in h.report.steps} <= set(range(2 * LANES_PER_SLOT))


def test_a_step_waiting_for_a_command_slot_is_skipped_on_interrupt(
        make_scheduler: MakeScheduler) -> None:
    cache = FakeStepCache(networked=True)
    h = make_scheduler([step("a"), step("b"), step("c")],
                       {"a": Script(hangs=True), "b": Script(hangs=True)}, parallel=2,
                       cache=cache)
    worker = threading.Thread(target=h.scheduler.run)
    worker.start()
    h.runner.wait_started("a", "b")
    for _ in range(500):  # c has looked up: it waits for a command slot
        if "c" in cache.looked_up:
            break
        threading.Event().wait(0.01)
    assert "c" in cache.looked_up and "c" not in h.runner.started
    h.scheduler.interrupt(signal.SIGINT)
    worker.join(5)
    assert not worker.is_alive()
    a, b, c = h.report.steps
    assert (b.status, b.reason) == ("failure", "killed by interrupt")
    assert (a.status, a.reason) == ("failure", "killed by interrupt")
    assert (c.status, c.reason) == ("skipped", "not started: the run was interrupted")
    assert "c" not in h.runner.started


def test_a_local_store_keeps_its_slot(make_scheduler: MakeScheduler) -> None:
    box: list[Harness] = []
    first: list[bool] = []  # at the first store: had c started?

    def on_store(name: str) -> None:
        if not first:
            first.append("c" in box[0].runner.started)

    cache = FakeStepCache(on_store=on_store)
    box.append(make_scheduler([step("a"), step("b"), step("c")], parallel=2, cache=cache))
    box[0].scheduler.run()
    assert first == [False]  # no remote tier: c waited for a slot that a store still held
    assert set(cache.stored) == {"a", "b", "c"}


def test_one_slot_keeps_steps_strictly_in_turn_while_uploading(
        make_scheduler: MakeScheduler) -> None:
    cache = FakeStepCache(networked=True)
    h = make_scheduler([step("a"), step("b")], parallel=1, cache=cache)
    h.scheduler.run()
    kinds = [(type(e).__name__, getattr(e, "step", None) or e.result.name)  # type: ignore[attr-defined]
             for e in h.events.events if type(e).__name__ in ("StepStarted", "StepFinished")]
    assert kinds == [("StepStarted", "a"), ("StepFinished", "a"),
                     ("StepStarted", "b"), ("StepFinished", "b")]


def test_failed_steps_and_uncached_steps_are_not_stored(make_scheduler: MakeScheduler) -> None:
    cache = FakeStepCache()
    h = make_scheduler([step("a"), step("b", cache=False)], {"a": Script(exit_code=1)},
                       cache=cache, keep_going=True)
    h.scheduler.run()
    assert cache.looked_up == ["a"]
    assert cache.stored == {}
    assert statuses(h) == {"a": "failure", "b": "success"}


class _CountingThread(threading.Thread):
    """``threading.Thread`` that counts how many were started (patched in for one test)."""

    starts = 0

    def start(self) -> None:
        type(self).starts += 1
        super().start()


@pytest.mark.parametrize("parallel", [1, 2, 4])
def test_a_large_run_starts_at_most_parallel_threads(make_scheduler: MakeScheduler,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    parallel: int) -> None:
    n = 2_000
    steps = [step(f"s{i}", *([f"s{i - 1}"] if i % 10 else [])) for i in range(n)]
    cache = FakeStepCache(hits={f"s{i}": "" for i in range(0, n, 2)})  # half are cache hits
    h = make_scheduler(steps, parallel=parallel, cache=cache)
    peak = 0
    real_run = h.runner.run

    def run_and_count(request):  # type: ignore[no-untyped-def]
        nonlocal peak
        peak = max(peak, threading.active_count())
        return real_run(request)

    h.runner.run = run_and_count  # type: ignore[method-assign]
    before = threading.active_count()
    _CountingThread.starts = 0
    monkeypatch.setattr(threading, "Thread", _CountingThread)
    h.scheduler.run()
    assert statuses(h) == {f"s{i}": "cached" if i % 2 == 0 else "success" for i in range(n)}
    assert _CountingThread.starts <= parallel  # one worker per slot, not one per step
    assert peak - before <= parallel
    assert sorted({r.slot for r in h.report.steps}) == list(range(parallel))


def test_the_workers_end_with_the_run(make_scheduler: MakeScheduler) -> None:
    def workers() -> list[threading.Thread]:
        return [t for t in threading.enumerate()
                if t.name.startswith(("attest-worker-", "attest-step-"))]

    for t in workers():  # an earlier test's workers, still finishing their stop message
        t.join(5)
    assert workers() == []
    for _ in range(3):  # a process that runs several pipelines keeps no idle threads
        h = make_scheduler([step(f"s{i}") for i in range(20)], parallel=3)
        h.scheduler.run()
        for t in workers():
            t.join(5)
        assert workers() == []
    assert statuses(h) == {f"s{i}": "success" for i in range(20)}


def test_a_step_whose_output_cannot_be_written_fails_and_the_run_goes_on(tmp_path: Path
                                                                        ) -> None:
    """One thread serves every running command: a log write that fails (a full disk) fails
    that step, with its reason, and neither the other steps nor the run."""
    import errno

    from attest_cli.engine.events import EventBus
    from attest_cli.engine.masking import SecretMasker
    from attest_cli.engine.run_report import RunReport
    from attest_cli.engine.scheduler import Scheduler, SchedulerOptions
    from attest_cli.engine.step_runner import ProcessStepRunner
    from attest_cli.pipeline.model import Pipeline

    class FullDisk(SecretMasker):
        def __call__(self, text: str) -> str:
            if text.startswith("boom"):  # the step's output, never its command
                raise OSError(errno.ENOSPC, "No space left on device")
            return text

    steps = [Step(name="full", run="printf 'boom, '; sleep 0.2; echo boom; sleep 5"),
             Step(name="fine", run="sleep 0.3; echo fine")]
    pipeline = Pipeline(name="p", path=tmp_path / "attest.yaml", root=tmp_path,
                        steps={s.name: s for s in steps})
    report = RunReport(run_id="r1", pipeline="p", pipeline_file="attest.yaml",
                       started_at=0.0, parallel=2)
    scheduler = Scheduler(pipeline, ["full", "fine"], report, EventBus(),
                          SchedulerOptions(parallel=2, logs_dir=tmp_path / "logs",
                                           keep_going=True, base_env={"PATH": "/bin:/usr/bin"}),
                          masker=FullDisk(["s3cret"]), runner=ProcessStepRunner())
    assert scheduler._loop is not None  # the event loop, not the workers
    scheduler.run()
    results = {r.name: r for r in report.steps}
    assert results["fine"].status == "success"
    assert results["full"].status == "failure"
    assert "no space left on device" in (results["full"].reason or "")
    assert results["full"].wall_seconds is None or results["full"].wall_seconds < 5
