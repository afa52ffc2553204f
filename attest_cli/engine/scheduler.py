"""Run the selected steps of a pipeline as a DAG, at most ``parallel`` commands at a time.

Where steps are real processes and nothing waits on the network (no remote cache tier),
one thread does everything: it schedules, looks up, starts each command without waiting
for it, and serves every running command from one ``poll`` (an event loop: ``_Loop``,
:class:`~attest_cli.engine.process.RunningCommand`), storing each step as it ends. Worker
threads cost two hand-offs per step and contention for the interpreter lock: a 1,000-step
cold build made 14 context switches a step (make: 2.5) and was 10% slower. Elsewhere (a
remote tier, a remote executor, a test's fake runner, a CPU profile of attest) a fixed pool
of long-lived worker threads runs the started steps, never a thread per step: starting
and joining 5,000 threads was most of a 5,000-step no-op re-run. With a remote cache tier,
``parallel`` bounds the commands, and up to ``LANES_PER_SLOT`` times as many steps are in
flight, their lookups, restores and uploads waiting on the network meanwhile. A failure
stops scheduling new steps unless ``keep_going``; steps whose needs failed are
``skipped``. Everything observable is published on the event bus.

With a remote tier, cache lookups stay off the scheduler thread, though a hit starts no
process: a lookup may wait on a remote backend, and the scheduler thread must stay free to
honour an interrupt within ``INTERRUPT_GRACE_SECONDS``. The event loop looks up only on
local disk.

At ``-j`` 2 and up the event loop also looks steps up ahead: up to ``LOOKAHEAD`` x
``parallel`` steps are in flight (a lane each), and a miss's command is sent to the step
launcher at once, which holds it until fewer than ``parallel`` of its commands run
(``engine/launcher_server.py``). When a command exits, the launcher starts the next one
itself, without a round trip to this thread; the commands stay bounded by ``parallel``.
At ``-j1`` steps stay strictly one after the other, events and log lines included. Where
the launcher cannot hold a command back (it is gone, or attest spawned a command itself),
only ``parallel`` steps are in flight.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import os
import queue
import select
import stat
import threading
import time
from collections import ChainMap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from attest_cli.deadline import note_signal
from attest_cli.engine.events import (
    CacheChecked,
    CacheStored,
    EventBus,
    StepFinished,
    StepOutput,
    StepStarted,
)
from attest_cli.engine.interfaces import (
    CacheDecision,
    Clock,
    EnvProvider,
    StepCache,
    StepContext,
    StepRequest,
    StepRunner,
)
from attest_cli.engine.masking import SecretMasker
from attest_cli.engine.process import (
    DRAIN_SECONDS,
    KILL_GRACE_SECONDS,
    ProcessOutcome,
    RunningCommand,
)
from attest_cli.engine.run_report import RunReport, StepResult, settle_times
from attest_cli.engine.step_runner import ProcessStepRunner, SystemClock
from attest_cli.engine.stepscope import working_for
from attest_cli.errors import disk_full
from attest_cli.pipeline.model import Pipeline, Step
from attest_cli.record import FrozenRecord, Record

log = logging.getLogger("attest.pipeline")

# After SIGINT/SIGTERM, how long a step may stay busy before the run stops waiting for it
# (seconds). Its processes are gone by then (SIGKILL at KILL_GRACE_SECONDS, then at most
# DRAIN_SECONDS of reading); what can still be busy is attest's own work for the step (a
# cache lookup on a stalled peer), which must not hold the promised exit 130/143.
INTERRUPT_GRACE_SECONDS = KILL_GRACE_SECONDS + DRAIN_SECONDS + 1.0
# Steps in flight per command slot when the cache has a remote tier (see Scheduler.lanes).
LANES_PER_SLOT = 4
# Steps in flight per command slot when the launcher queues commands: one running, one
# looked up and waiting in the launcher for the slot to free.
LOOKAHEAD = 2
# The event loop stores a step itself when its declared outputs hold at most this much, and
# restores a cache hit itself up to this much; larger ones (or unknown: directories, globs)
# are stored or restored on a thread of their own, so that hashing and copying gigabytes
# never stalls the other steps' output, timeouts or the end of an interrupted run.
STORE_IN_LOOP_BYTES = 1 << 20
_GLOB_CHARS = frozenset("*?[")  # what makes a declaration a glob (attest_cli.pathspec)


class SchedulerOptions(Record):
    """How the scheduler runs a pipeline: its parallelism, limits and where logs go."""

    parallel: int
    logs_dir: Path
    keep_going: bool
    default_timeout: float | None  # --timeout: for steps without their own
    use_cache: bool
    base_env: Mapping[str, str]  # default: a copy of os.environ, taken when created
    # Steps on worker threads even where one event loop could run them: a CPU profile of
    # attest (--profile cpu) attributes a worker's samples to its step by the thread's name.
    threads: bool

    def __init__(self, parallel: int, logs_dir: Path, keep_going: bool = False,
                 default_timeout: float | None = None, use_cache: bool = True,
                 base_env: Mapping[str, str] | None = None, threads: bool = False) -> None:
        self.parallel = parallel
        self.logs_dir = logs_dir
        self.keep_going = keep_going
        self.default_timeout = default_timeout
        self.use_cache = use_cache
        self.base_env = dict(os.environ) if base_env is None else base_env
        self.threads = threads


class _Work(FrozenRecord):
    """A started step on its way to a worker."""

    step: Step
    slot: int
    upstream: dict[str, StepResult]

    def __init__(self, step: Step, slot: int, upstream: dict[str, StepResult]) -> None:
        self.__dict__.update(step=step, slot=slot, upstream=upstream)


class _PendingRestore(Record):
    """A step whose cache hit is too large to restore on the event loop (see _begin)."""

    step: Step
    result: StepResult
    ctx: StepContext
    log_path: Path
    decision: CacheDecision
    started: float  # when the lookup began (its CacheChecked duration)

    def __init__(self, step: Step, result: StepResult, ctx: StepContext, log_path: Path,
                 decision: CacheDecision, started: float) -> None:
        self.step = step
        self.result = result
        self.ctx = ctx
        self.log_path = log_path
        self.decision = decision
        self.started = started


class _Launch(Record):
    """A step past its lookup, its command about to run: what finishing it needs."""

    step: Step
    ctx: StepContext
    decision: CacheDecision | None
    result: StepResult
    log_path: Path
    request: StepRequest

    def __init__(self, step: Step, ctx: StepContext, decision: CacheDecision | None,
                 result: StepResult, log_path: Path, request: StepRequest) -> None:
        self.step = step
        self.ctx = ctx
        self.decision = decision
        self.result = result
        self.log_path = log_path
        self.request = request

    @property
    def slot(self) -> int:
        return self.result.slot or 0


class Scheduler:
    """Executes one run; create a new instance per run.

    ``runner`` runs the step commands and ``clock`` tells the time; the defaults are real
    processes and the system clock, ``engine/testing.py`` has fakes for both.
    """

    def __init__(self, pipeline: Pipeline, order: Sequence[str], report: RunReport,
                 bus: EventBus, options: SchedulerOptions, *, cache: StepCache | None = None,
                 env_providers: Sequence[EnvProvider] = (),
                 masker: SecretMasker | None = None, runner: StepRunner | None = None,
                 clock: Clock | None = None) -> None:
        self.pipeline = pipeline
        self.order = list(order)
        self.report = report
        self.bus = bus
        self.options = options
        self.cache = cache
        self.env_providers = list(env_providers)
        self.masker = masker or SecretMasker()
        self.runner: StepRunner = runner or ProcessStepRunner()
        self.clock: Clock = clock or SystemClock()
        self.interrupted: int | None = None
        # Finished steps, from the workers to the scheduler thread.
        self._done: queue.SimpleQueue[tuple[str, StepResult]] = queue.SimpleQueue()
        # With a remote cache tier, a step's lookup, restore and upload wait on the network,
        # not on a core: ``parallel`` then bounds the commands running at once (a token
        # each), while up to LANES_PER_SLOT x parallel steps are in flight (a lane each), so
        # remote hits and uploads overlap the commands. A local cache is CPU work under the
        # GIL (overlapping a local store with the next step's start made a 1,000-step cold
        # build ~8% slower), and with one slot steps stay strictly one after the other,
        # events and log lines included: there a step holds its slot throughout.
        overlap = options.parallel > 1 and cache is not None and cache.networked
        self.lanes = options.parallel * LANES_PER_SLOT if overlap else options.parallel
        self._commands = threading.BoundedSemaphore(options.parallel) if overlap else None
        # Started steps, from the scheduler thread to the workers; None stops a worker.
        self._work_queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._workers = 0  # started so far; never more than self.lanes
        # Real processes and no network to wait on: one thread runs every step (lookup,
        # spawn, output, store) in an event loop over the running commands (_Loop). Worker
        # threads cost two hand-offs per step and contended for the interpreter lock: 14
        # context switches a step where make has 2.5 (issue 14). Fakes, remote executors,
        # remote cache tiers and CPU profiles keep the workers.
        local = cache is None or not cache.networked
        self._loop = _Loop() if (isinstance(self.runner, ProcessStepRunner) and local
                                 and not options.threads) else None
        # the launcher bounds the commands (see the module's docstring); without one, or
        # once it is gone, the steps in flight do
        self._queue_limit = options.parallel if self._loop is not None and \
            options.parallel > 1 else 0
        if self._queue_limit:
            self.lanes = options.parallel * LOOKAHEAD

    # -- signals -------------------------------------------------------------------------
    def interrupt(self, signum: int) -> None:
        """Stop starting steps and kill running process groups (safe from a signal handler).

        Network calls in flight (a metrics push, a trace export) give up too: see
        :func:`attest_cli.deadline.note_signal`."""
        note_signal()
        if self.interrupted is None:
            self.interrupted = signum
        threading.Thread(target=self._terminate, name="attest-terminate",
                         daemon=True).start()

    def _terminate(self) -> None:
        """Off the signal handler: the launcher first starts none of the run's queued
        commands (a step that exits 0 on SIGTERM must not let the next one start), then
        every running command is stopped."""
        if self._queue_limit:
            cast(ProcessStepRunner, self.runner).hold(self.report.run_id)
        self.runner.terminate_all()

    # -- main loop -----------------------------------------------------------------------
    def run(self) -> RunReport:
        """Schedule until every selected step has a result.

        Bookkeeping is incremental (remaining needs per step, a ready heap in file order), so
        a finished step costs work proportional to its dependents, not to the whole pipeline.
        """
        try:
            return self._schedule()
        except BaseException:
            if self._loop is not None:  # no command outlives a run that failed
                self._loop.abort_all()
            raise
        finally:
            if self._loop is not None:
                self._loop.close()

    def _schedule(self) -> RunReport:
        index = {name: i for i, name in enumerate(self.order)}
        selected = set(self.order)
        remaining = {n: {d for d in self.pipeline.steps[n].needs if d in selected}
                     for n in self.order}
        dependents: dict[str, list[str]] = {n: [] for n in self.order}
        for n, needs in remaining.items():
            for d in needs:
                dependents[d].append(n)
        ready = [index[n] for n in self.order if not remaining[n]]
        heapq.heapify(ready)
        results: dict[str, StepResult] = {}
        running: dict[str, int] = {}  # step -> slot (its lane)
        free_slots = list(range(self.lanes))  # a heap: the lowest slot first
        stop_reason: str | None = None

        def settle(name: str) -> None:
            """A step has a result: release or skip its dependents."""
            todo = [name]
            while todo:
                done = todo.pop()
                for dep in dependents[done]:
                    if dep in results:
                        continue
                    if results[done].ok:
                        remaining[dep].discard(done)
                        if not remaining[dep]:
                            heapq.heappush(ready, index[dep])
                    else:
                        reason = f"needs '{done}', which did not succeed"
                        results[dep] = self._skip(self.pipeline.steps[dep], reason)
                        todo.append(dep)

        interrupted_at: float | None = None
        held = False
        while len(results) < len(self.order):
            if self.interrupted is not None and stop_reason is None:
                stop_reason = "the run was interrupted"
                interrupted_at = self.clock.monotonic()
            if (interrupted_at is not None and running
                    and self.clock.monotonic() - interrupted_at > INTERRUPT_GRACE_SECONDS):
                for name in sorted(running, key=index.__getitem__):
                    heapq.heappush(free_slots, running.pop(name))
                    if self._loop is not None:
                        self._loop.drop(name)
                    results[name] = self._abandon(self.pipeline.steps[name])
                    settle(name)
            if stop_reason:
                if self._loop is not None:
                    if not held:  # the launcher starts none of this run's queued commands
                        held = True
                        cast(ProcessStepRunner, self.runner).hold(self.report.run_id)
                    for name in self._loop.cancel_unstarted():  # taken back from the launcher
                        heapq.heappush(free_slots, running.pop(name))  # skipped just below
                for name in self.order:
                    if name not in results and name not in running:
                        results[name] = self._skip(self.pipeline.steps[name],
                                                   f"not started: {stop_reason}")
                ready.clear()
            limit = self._in_flight_limit()  # again only after a command starts
            while ready and len(running) < limit and self.interrupted is None:
                name = self.order[heapq.heappop(ready)]
                if name in results:
                    continue
                upstream = {d: results[d] for d in self.pipeline.steps[name].needs
                            if d in results}
                with working_for(name):
                    fresh = self._fresh(self.pipeline.steps[name], free_slots[0], upstream)
                if fresh is not None:  # up to date: no worker, no lookup
                    settle_times(fresh)
                    results[name] = fresh
                    self.bus.publish(StepFinished(run_id=self.report.run_id, result=fresh))
                    settle(name)
                    continue
                slot = heapq.heappop(free_slots)
                running[name] = slot
                work = _Work(self.pipeline.steps[name], slot, upstream)
                if self._loop is not None:
                    self._start_in_loop(work)
                else:
                    self._dispatch(work, len(running))
                limit = self._in_flight_limit()  # one attest spawned itself lowers it
            if not running:
                if len(results) < len(self.order) and not ready:  # pragma: no cover - defensive
                    raise RuntimeError("scheduler stalled: no step is ready or running")
                continue
            try:
                if self._loop is not None:
                    if self._done.empty():
                        self._pump_loop(0.2)
                    name, result = self._done.get_nowait()
                else:
                    name, result = self._done.get(timeout=0.2)
            except queue.Empty:
                continue
            if name not in running:
                continue  # a step abandoned after an interrupt that finished after all
            heapq.heappush(free_slots, running.pop(name))
            settle_times(result)
            results[name] = result
            self.bus.publish(StepFinished(run_id=self.report.run_id, result=result))
            if self.interrupted is not None and stop_reason is None:
                stop_reason = "the run was interrupted"  # not the kill it caused
            if result.status == "failure" and not self.options.keep_going and not stop_reason:
                stop_reason = f"step '{name}' failed"
            settle(name)
        for _ in range(self._workers):  # a worker still busy (abandoned) stops when done
            self._work_queue.put(None)
        self.report.steps = [results[n] for n in self.order if n in results]
        return self.report

    def _dispatch(self, work: _Work, busy: int) -> None:
        """Hand a started step to the pool; a worker is added only when all are busy."""
        if busy > self._workers:
            self._workers += 1
            threading.Thread(target=self._worker, name=f"attest-worker-{self._workers}",
                             daemon=True).start()
        self._work_queue.put(work)

    def _worker(self) -> None:
        """One pool thread: run started steps until told to stop.

        While it runs a step the thread is named ``attest-step-<name>`` (what a thread per
        step was called): ``attest run --profile-cpu`` and ``attest analyze`` attribute a
        worker's samples to its step by that name."""
        thread = threading.current_thread()
        idle = thread.name
        while (work := self._work_queue.get()) is not None:
            thread.name = f"attest-step-{work.step.name}"
            try:
                with working_for(work.step.name):
                    self._work(work.step, work.slot, work.upstream)
            finally:
                thread.name = idle

    def _command_token(self) -> bool:
        """Wait for one of the ``parallel`` command slots (with lanes; see ``__init__``);
        False if the run was interrupted first."""
        if self._commands is None:
            return self.interrupted is None
        while not self._commands.acquire(timeout=0.2):
            if self.interrupted is not None:
                return False
        if self.interrupted is not None:
            self._commands.release()
            return False
        return True

    def _in_flight_limit(self) -> int:
        """How many steps may be in flight: the lanes, or ``parallel`` where the launcher
        cannot hold the commands back (it is not running, or no longer, or a command in
        flight was spawned by attest itself: the launcher's count does not include it)."""
        if not self._queue_limit:
            return self.lanes
        assert self._loop is not None
        if cast(ProcessStepRunner, self.runner).queues_commands() and \
                not self._loop.has_own_commands():
            return self.lanes
        return self.options.parallel

    def _skip(self, step: Step, reason: str) -> StepResult:
        result = StepResult(name=step.name, command=self.masker(step.run), status="skipped",
                            reason=reason, needs=list(step.needs))
        self.bus.publish(StepFinished(run_id=self.report.run_id, result=result))
        return result

    def _abandon(self, step: Step) -> StepResult:
        """A step still busy long after the interrupt: recorded, no longer waited for."""
        result = StepResult(name=step.name, command=self.masker(step.run), status="failure",
                            reason=f"killed by interrupt (still busy "
                                   f"{INTERRUPT_GRACE_SECONDS:g}s after the signal; "
                                   "not waited for)")
        self.bus.publish(StepFinished(run_id=self.report.run_id, result=result))
        return result

    # -- one step (worker thread) --------------------------------------------------------
    def _env_view(self, step: Step) -> ChainMap[str, str]:
        """The step's environment without copying it: attest's variables over the step's
        ``env`` over the pipeline's over attest's own environment."""
        return ChainMap({"ATTEST_RUN_ID": self.report.run_id, "ATTEST_STEP": step.name,
                         "ATTEST_PIPELINE": self.pipeline.name}, step.env, self.pipeline.env,
                        cast("dict[str, str]", self.options.base_env))  # read, never written

    def _env_for(self, step: Step) -> dict[str, str]:
        """The environment a step's process receives (a copy it may extend): the mappings
        of :meth:`_env_view` merged at C speed (``dict(ChainMap)`` asks every map for every
        name: ~20 µs a step with a CI runner's environment)."""
        return {**self.options.base_env, **self.pipeline.env, **step.env,
                "ATTEST_RUN_ID": self.report.run_id, "ATTEST_STEP": step.name,
                "ATTEST_PIPELINE": self.pipeline.name}

    def _work(self, step: Step, slot: int, upstream: dict[str, StepResult]) -> None:
        try:
            result = self._run_step(step, slot, upstream)
        except Exception as exc:  # never lose a step: report it as failed
            result = self._failed(step, slot, exc)
        self._finished(step, result)

    def _failed(self, step: Step, slot: int, exc: Exception) -> StepResult:
        """A step attest itself could not run (a full disk, a bug): recorded as failed."""
        log.error("step %s could not run: %s", step.name, exc,
                  exc_info=log.isEnabledFor(logging.DEBUG))
        return StepResult(name=step.name, command=self.masker(step.run), status="failure",
                          exit_code=None, slot=slot,
                          reason=str(disk_full(exc) or f"internal error: {exc}"))

    def _finished(self, step: Step, result: StepResult) -> None:
        # The result is final before it is published: nothing changes it afterwards.
        result.needs = list(step.needs)  # recorded so analyses can rebuild the DAG
        self._done.put((step.name, result))

    def _run_step(self, step: Step, slot: int, upstream: dict[str, StepResult]) -> StepResult:
        begun = self._begin(step, slot, upstream)
        if isinstance(begun, StepResult):
            return begun
        assert isinstance(begun, _Launch)  # a worker restores whatever the size
        try:
            outcome = self.runner.run(begun.request)
        finally:
            if self._commands is not None:  # the next command may start during the store
                self._commands.release()
        return self._complete(begun, outcome)

    def _begin(self, step: Step, slot: int, upstream: dict[str, StepResult]
               ) -> StepResult | _Launch | _PendingRestore:
        """Everything before the command: StepStarted, the lookup (a hit ends the step
        here), the command slot, the environment. The slot is held on return. On the event
        loop, a hit too large to restore there is returned as a _PendingRestore."""
        masked_cmd = self.masker(step.run)
        log_path = self.options.logs_dir / f"{step.name}.log"
        result = StepResult(name=step.name, command=masked_cmd, slot=slot,
                            started_at=self.clock.time(), log_file=str(log_path))
        self.bus.publish(StepStarted(run_id=self.report.run_id, step=step.name,
                                     command=masked_cmd, slot=slot, lookup=self._looks_up(step)))
        env = self._env_for(step)
        ctx = StepContext(run_id=self.report.run_id, pipeline=self.pipeline, step=step, env=env,
                          workdir=self.pipeline.root, upstream=upstream,
                          restore_inline_limit=STORE_IN_LOOP_BYTES if self._loop else None)
        t0 = self.clock.monotonic()
        decision = self._lookup(ctx)
        if decision is not None and decision.pending is not None:
            return _PendingRestore(step, result, ctx, log_path, decision, t0)
        return self._after_lookup(step, result, ctx, log_path, decision)

    def _after_lookup(self, step: Step, result: StepResult, ctx: StepContext, log_path: Path,
                      decision: CacheDecision | None) -> StepResult | _Launch:
        """A hit replays; a miss takes the command slot and builds the request."""
        env = cast("dict[str, str]", ctx.env)
        if decision is not None and decision.hit:
            return self._replay(step, result, decision, log_path)
        if not self._command_token():  # interrupted while the cache was consulted
            result.status = "skipped"
            result.reason = "not started: the run was interrupted"
            return result
        try:
            for provider in self.env_providers:
                env.update(provider(step.name))
        except BaseException:
            if self._commands is not None:
                self._commands.release()
            raise
        request = StepRequest(
            step=step.name, command=step.run, cwd=self.pipeline.root, env=env,
            log_path=log_path, timeout=step.timeout or self.options.default_timeout,
            mask=self.masker,
            on_line=lambda line: self.bus.publish(StepOutput(step=step.name, line=line)),
            cache_key=decision.key if decision is not None else None)
        return _Launch(step, ctx, decision, result, log_path, request)

    def _complete(self, launch: _Launch, outcome: ProcessOutcome) -> StepResult:
        """Everything after the command: the result's figures and status, the store."""
        step, result, decision = launch.step, launch.result, launch.decision
        timeout = launch.request.timeout
        result.finished_at = self.clock.time()
        if outcome.spawned_at is not None:  # it waited in the launcher: it started then
            # (the launcher's time.monotonic, not self.clock: a fake clock runs no process)
            result.started_at = result.finished_at - (time.monotonic() - outcome.spawned_at)
        result.exit_code = outcome.exit_code if outcome.exit_code >= 0 else None
        result.wall_seconds = outcome.wall_seconds
        result.cpu_user_seconds = outcome.cpu_user_seconds
        result.cpu_system_seconds = outcome.cpu_system_seconds
        result.max_rss_bytes = outcome.max_rss_bytes
        result.max_rss_floor_bytes = outcome.max_rss_floor_bytes
        result.timed_out = outcome.timed_out
        result.signal = outcome.signal
        if not outcome.logged:  # a silent step leaves no log file (nor a path to one)
            result.log_file = None
        if outcome.exit_code == 0 and not outcome.timed_out and outcome.reason is None:
            result.status = "success"
        else:
            result.status = "failure"
            if outcome.timed_out:
                result.reason = f"timed out after {timeout:g}s"
            elif self.interrupted is not None:
                result.reason = "killed by interrupt"
            elif outcome.reason is not None:
                result.reason = outcome.reason
            else:
                result.reason = f"exit code {outcome.exit_code}"
        result.remote = outcome.remote
        if decision is not None:
            result.cache_key = decision.key
            result.cache_backend = decision.backend
            result.cache_miss_reason = decision.reason
            result.inputs = decision.inputs
            if result.status == "success" and self.interrupted is None:
                self._store(launch.ctx, decision, result, launch.log_path)
        if outcome.cached_by is not None and result.status == "success":
            self._answered_by_runner_cache(step, result, outcome.cached_by)
        return result

    # -- the event loop (one thread for every step; see __init__) -------------------------
    def _start_in_loop(self, work: _Work) -> None:
        """Begin a step and start its command without waiting for it; a step that ends
        before its command (a hit, an error) is finished at once."""
        assert self._loop is not None
        step = work.step
        with working_for(step.name):
            try:
                begun = self._begin(step, work.slot, work.upstream)
                if isinstance(begun, StepResult):
                    self._finished(step, begun)
                elif isinstance(begun, _PendingRestore):
                    threading.Thread(target=self._restore_off_loop, args=(begun,),
                                     name=f"attest-restore-{step.name}", daemon=True).start()
                else:
                    self._start_command(begun)
            except Exception as exc:
                self._finished(step, self._failed(step, work.slot, exc))

    def _start_command(self, launch: _Launch) -> None:
        """Start a begun step's command on the loop; one that cannot start fails."""
        assert self._loop is not None
        runner = cast(ProcessStepRunner, self.runner)
        try:
            # fail-fast: once a step fails, the launcher starts no more of this run's
            self._loop.add(launch.step.name, launch, runner.start(
                launch.request, limit=self._queue_limit, group=self.report.run_id,
                fail_fast=not self.options.keep_going))
        except Exception as exc:
            self._finished(launch.step, self._failed(launch.step, launch.slot, exc))

    def _restore_off_loop(self, pending: _PendingRestore) -> None:
        """A large hit, restored on this thread; a miss after all (the entry turned out
        corrupt, say) goes back to the loop to run its command."""
        assert self._loop is not None and pending.decision.pending is not None
        step = pending.step
        with working_for(step.name):
            try:
                decision = self._decided(pending.ctx, pending.decision.pending,
                                         pending.started)
                begun = self._after_lookup(step, pending.result, pending.ctx,
                                           pending.log_path, decision)
                if isinstance(begun, StepResult):
                    self._finished(step, begun)
                else:
                    self._loop.start_later(begun)
            except Exception as exc:
                self._finished(step, self._failed(step, pending.result.slot or 0, exc))
        self._loop.wake()

    def _pump_loop(self, timeout: float) -> None:
        """Wait at most ``timeout`` for the running commands; finish those that ended."""
        assert self._loop is not None
        for launch, command, error in self._loop.wait(timeout):
            with working_for(launch.step.name):
                self._end_in_loop(launch, command, error)
        for launch in self._loop.to_start():  # misses found by a restore thread
            with working_for(launch.step.name):
                self._start_command(launch)

    def _end_in_loop(self, launch: _Launch, command: RunningCommand,
                     error: Exception | None) -> None:
        step, slot = launch.step, launch.slot
        try:
            if error is not None:
                raise error
            outcome = command.finish()
        except Exception as exc:  # never reaped: stopped here, and failed
            command.abort()
            self._finished(step, self._failed(step, slot, exc))
            return
        if launch.decision is not None and outcome.exit_code == 0 and \
                self._outputs_may_be_large(step):
            threading.Thread(target=self._complete_off_loop, args=(launch, outcome),
                             name=f"attest-store-{step.name}", daemon=True).start()
            return
        self._complete_and_finish(launch, outcome)

    def _complete_and_finish(self, launch: _Launch, outcome: ProcessOutcome) -> None:
        try:
            result = self._complete(launch, outcome)
        except Exception as exc:
            result = self._failed(launch.step, launch.slot, exc)
        self._finished(launch.step, result)

    def _complete_off_loop(self, launch: _Launch, outcome: ProcessOutcome) -> None:
        with working_for(launch.step.name):
            self._complete_and_finish(launch, outcome)
        assert self._loop is not None
        self._loop.wake()

    def _outputs_may_be_large(self, step: Step) -> bool:
        """Whether storing the step may take long (:data:`STORE_IN_LOOP_BYTES`): an lstat
        per declared file; a directory or a glob may hold anything."""
        root, total = str(self.pipeline.root), 0
        for pattern in step.outputs:
            if not _GLOB_CHARS.isdisjoint(pattern):
                return True
            try:
                st = os.lstat(os.path.join(root, pattern))
            except (OSError, ValueError):
                continue  # not produced: the store says so, at once
            if stat.S_ISDIR(st.st_mode):
                return True
            total += st.st_size
            if total > STORE_IN_LOOP_BYTES:
                return True
        return False

    def _answered_by_runner_cache(self, step: Step, result: StepResult, backend: str) -> None:
        """The runner's own cache answered (a REAPI server found the Action in its Action
        Cache): nothing ran, so the step is a cache hit of that backend, counted as one."""
        result.status = "cached"
        result.cache_hit = True
        result.cache_backend = backend
        self.bus.publish(CacheChecked(step=step.name, backend=backend, hit=True,
                                      key=result.cache_key, reason=None,
                                      duration=result.wall_seconds, components=None))

    def _fresh(self, step: Step, slot: int, upstream: dict[str, StepResult]
               ) -> StepResult | None:
        """The step's result if the cache vouches it is up to date, on this thread.

        A no-op re-run is mostly such steps; handing each to a worker and back cost more
        than deciding it (issue 14). Any doubt, or any error, is None: the worker's full
        lookup decides instead."""
        if self.cache is None or not self._looks_up(step):
            return None
        env = self._env_view(step)  # the check reads a few names: no copy per step
        t0 = self.clock.monotonic()
        try:
            decision = self.cache.fresh(StepContext(
                run_id=self.report.run_id, pipeline=self.pipeline, step=step, env=env,
                workdir=self.pipeline.root, upstream=upstream))
        except Exception as exc:
            log.debug("up-to-date check of %s failed, looking it up: %s", step.name, exc)
            return None
        if decision is None:
            return None
        masked_cmd = self.masker(step.run)
        log_path = self.options.logs_dir / f"{step.name}.log" if decision.log_text else None
        result = StepResult(name=step.name, command=masked_cmd, slot=slot,
                            started_at=self.clock.time(),
                            log_file=str(log_path) if log_path else None)
        self.bus.publish(StepStarted(run_id=self.report.run_id, step=step.name,
                                     command=masked_cmd, slot=slot, lookup=True))
        self.bus.publish(CacheChecked(step=step.name, backend=decision.backend, hit=True,
                                      key=decision.key, reason=None,
                                      duration=self.clock.monotonic() - t0, up_to_date=True))
        result = self._replay(step, result, decision, log_path)
        result.needs = list(step.needs)
        return result

    def _looks_up(self, step: Step) -> bool:
        return self.cache is not None and self.options.use_cache and step.cache

    def _lookup(self, ctx: StepContext) -> CacheDecision | None:
        cache = self.cache
        if cache is None or not self._looks_up(ctx.step):
            return None
        return self._decided(ctx, lambda: cache.lookup(ctx), self.clock.monotonic())

    def _decided(self, ctx: StepContext, lookup: Callable[[], CacheDecision],
                 t0: float) -> CacheDecision | None:
        """``lookup``'s decision, published (unless it is left pending); None if it
        failed (the step then runs)."""
        try:
            decision = lookup()
        except Exception as exc:
            log.warning("cache lookup for %s failed, running the step: %s", ctx.step.name, exc)
            return None
        if decision.pending is None:
            self.bus.publish(CacheChecked(step=ctx.step.name, backend=decision.backend,
                                          hit=decision.hit, key=decision.key,
                                          reason=decision.reason,
                                          duration=self.clock.monotonic() - t0,
                                          components=decision.components))
        return decision

    def _store(self, ctx: StepContext, decision: CacheDecision, result: StepResult,
               log_path: Path) -> None:
        assert self.cache is not None
        t0 = self.clock.monotonic()
        try:
            stored = self.cache.store(ctx, decision, result, log_path)
        except Exception as exc:
            log.warning("cache store for %s failed: %s", ctx.step.name, exc)
            return
        result.output_digest = stored.output_digest
        result.outputs = stored.outputs
        self.bus.publish(CacheStored(step=ctx.step.name, backend=decision.backend,
                                     key=decision.key or "", bytes=stored.bytes,
                                     duration=self.clock.monotonic() - t0, stored=stored.stored,
                                     reason=stored.reason))

    def _replay(self, step: Step, result: StepResult, decision: CacheDecision,
                log_path: Path | None) -> StepResult:
        if decision.log_text:  # no empty log files: a missing log reads as empty
            assert log_path is not None
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log_path.write_text(decision.log_text, encoding="utf-8")
        else:
            result.log_file = None
        for line in decision.log_text.splitlines():
            self.bus.publish(StepOutput(step=step.name, line=line))
        result.finished_at = self.clock.time()
        result.status = "cached"
        result.exit_code = 0
        result.wall_seconds = result.finished_at - (result.started_at or result.finished_at)
        result.cache_hit = True
        result.cache_key = decision.key
        result.cache_backend = decision.backend
        result.output_digest = decision.output_digest
        result.outputs = decision.outputs
        result.inputs = decision.inputs
        return result


class _Loop:
    """The running commands of an event-loop run, and the one ``poll`` that waits on them
    (and on :meth:`wake`, for a step stored on a thread of its own)."""

    def __init__(self) -> None:
        self._running: dict[str, tuple[_Launch, RunningCommand]] = {}
        self._later: queue.SimpleQueue[_Launch] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._wake_lock = threading.Lock()
        self._closed = False

    def start_later(self, launch: _Launch) -> None:
        """A command for the loop to start (from another thread)."""
        self._later.put(launch)
        self.wake()

    def to_start(self) -> list[_Launch]:
        out = []
        with contextlib.suppress(queue.Empty):
            while True:
                out.append(self._later.get_nowait())
        return out

    def wake(self) -> None:
        """Make a waiting :meth:`wait` return (from any thread; never after close)."""
        with self._wake_lock, contextlib.suppress(BlockingIOError):
            if not self._closed:
                os.write(self._wake_w, b"!")

    def close(self) -> None:
        with self._wake_lock:
            if not self._closed:
                self._closed = True
                os.close(self._wake_r)
                os.close(self._wake_w)

    def add(self, name: str, launch: _Launch, command: RunningCommand) -> None:
        self._running[name] = (launch, command)

    def abort_all(self) -> None:
        for name in list(self._running):
            self.drop(name)

    def cancel_unstarted(self) -> list[str]:
        """Take back the commands still queued in the launcher; the names of those that
        never started (a command whose pid comes meanwhile runs on, and ends as usual)."""
        names = []
        for name, (_, command) in list(self._running.items()):
            if command.cancel():
                del self._running[name]
                names.append(name)
        return names

    def has_own_commands(self) -> bool:
        """Whether a command in flight was spawned by attest itself (not the launcher's)."""
        return any(not command.queued for _, command in self._running.values())

    def drop(self, name: str) -> None:
        """A step no longer waited for (after an interrupt): stopped, its pipe and log
        closed (never raises)."""
        entry = self._running.pop(name, None)
        if entry is not None:
            entry[1].abort()

    def wait(self, timeout: float
             ) -> list[tuple[_Launch, RunningCommand, Exception | None]]:
        """The steps whose commands ended (or failed to be read: the error), after at most
        ``timeout`` seconds of waiting."""
        done: list[tuple[_Launch, RunningCommand, Exception | None]] = []
        now = time.monotonic()
        poller = select.poll()
        owners: dict[int, tuple[RunningCommand, Any]] = {}
        for name, (launch, command) in list(self._running.items()):
            try:
                wait = command.tick(now)
                if wait is not None:
                    timeout = min(timeout, wait)
                    for source in command.sources:
                        fd = source if isinstance(source, int) else source.fileno()
                        owners[fd] = (command, source)
                        poller.register(fd, select.POLLIN)
                    continue
                done.append((launch, command, None))
            except Exception as exc:  # the step fails, not the run
                done.append((launch, command, exc))
            del self._running[name]
        if done:
            return done  # (a command that outlives its output has no source: a timed poll)
        poller.register(self._wake_r, select.POLLIN)
        ready: dict[RunningCommand, list[Any]] = {}
        for fd, _ in poller.poll(timeout * 1000):
            if fd == self._wake_r:
                os.read(self._wake_r, 4096)
                continue
            command, source = owners[fd]
            ready.setdefault(command, []).append(source)
        now = time.monotonic()
        for name, (launch, command) in list(self._running.items()):
            if command not in ready:
                continue
            try:
                with working_for(name):
                    command.ready(ready[command])
                if command.tick(now) is not None:
                    continue
                done.append((launch, command, None))
            except Exception as exc:  # a read that failed: the step fails, not the run
                done.append((launch, command, exc))
            del self._running[name]
        return done
