"""Run one step's command: own process group, captured output, timeout, resource usage.

Each step runs as ``/bin/sh -c`` in a new session so that a timeout or an interrupt can
kill the whole tree (``killpg``) and nothing is orphaned. A process that leaves that session
on purpose (``setsid``) is out of reach of ``killpg``; attest then stops reading the step's
output shortly after the step's shell exits (:data:`DRAIN_SECONDS`), so it cannot hang a
run either.

Steps are spawned by the step launcher (``engine/launcher.py``), a small process that
reaps them with ``wait4`` and reports their rusage, so that a step's peak RSS is its own
and not attest's; where the launcher cannot run, we spawn the child and reap it ourselves
with ``os.wait4`` (and set ``Popen.returncode`` so the object does not wait a second
time). Either way ``ru_maxrss`` is the largest peak of one process in the step's tree
(the shell or one descendant it waited for), not the sum of processes running at once.
"""

from __future__ import annotations

import _socket  # SHUT_WR only: not socket, whose enums cost start-up
import contextlib
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from attest_cli.engine.launcher import LaunchedStep, LauncherGone, StepLauncher
from attest_cli.engine.launcher_server import direct_argv, shell_env, spawn_command
from attest_cli.record import Record

KILL_GRACE_SECONDS = 3.0  # SIGTERM -> SIGKILL, on timeout and on interrupt
# A launched step's exit record may reach attest a little after the launcher reaped it: the
# launcher spawns the next queued steps first. A step is judged timed out only once its
# deadline is this far past with no record, so that one which ended just in time is not
# stopped (and, with fail-fast, its run held) for a record still on its way.
LATE_EXIT_RECORD = 0.02
# After a step's shell exits, attest reads what is left in its output pipe for at most this
# long and this much, then stops: a process the step detached (``setsid cmd &``) may keep
# the pipe open forever, and must not hold the run.
DRAIN_SECONDS = 1.0
DRAIN_BYTES = 1 << 20
TIMEOUT_EXIT_CODE = 124  # a step stopped by its timeout, as coreutils' timeout(1) reports


class ProcessOutcome(Record):
    """How one step's command ended: its exit, times, peak memory and when it began."""

    exit_code: int
    wall_seconds: float
    cpu_user_seconds: float
    cpu_system_seconds: float
    max_rss_bytes: int
    # The peak RSS the step's shell inherited at exec (Linux starts ru_maxrss at the peak of
    # the address space exec replaced): the launcher's ~5 MiB, or attest's own peak when
    # attest spawned the step. A reported peak at or below this is an upper bound only.
    max_rss_floor_bytes: int | None
    timed_out: bool
    signal: int | None
    logged: bool  # the step printed something: its log file exists
    # Set by a remote executor (docs/remote.md): where and how the step ran (worker, Action
    # and result digests, the worker's timestamps), recorded as the step's ``remote``.
    remote: dict[str, Any] | None
    # The backend whose cache answered instead of running the command (a REAPI server's
    # Action Cache hit on Execute): the step is recorded as cached from that backend.
    cached_by: str | None
    # When a step that waited in the launcher's queue was spawned (time.monotonic): its
    # start, for the timeline (it was looked up earlier, when it was queued).
    spawned_at: float | None
    # Why the step failed when no exit code says it (a remote result refused, a server gone
    # under execution.required); such an outcome has exit_code -1, recorded as null.
    reason: str | None

    def __init__(self, exit_code: int, wall_seconds: float, cpu_user_seconds: float,
                 cpu_system_seconds: float, max_rss_bytes: int,
                 max_rss_floor_bytes: int | None = None, timed_out: bool = False,
                 signal: int | None = None, logged: bool = False,
                 remote: dict[str, Any] | None = None, cached_by: str | None = None,
                 spawned_at: float | None = None, reason: str | None = None) -> None:
        self.exit_code = exit_code
        self.wall_seconds = wall_seconds
        self.cpu_user_seconds = cpu_user_seconds
        self.cpu_system_seconds = cpu_system_seconds
        self.max_rss_bytes = max_rss_bytes
        self.max_rss_floor_bytes = max_rss_floor_bytes
        self.timed_out = timed_out
        self.signal = signal
        self.logged = logged
        self.remote = remote
        self.cached_by = cached_by
        self.spawned_at = spawned_at
        self.reason = reason


class ProcessRegistry:
    """The process groups currently running, so an interrupt can stop them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pids: set[int] = set()
        self.closed = False  # terminate_all ran: a group started now is killed at once

    def add(self, pid: int) -> bool:
        """Track ``pid``; False once :meth:`terminate_all` ran (the caller kills it)."""
        with self._lock:
            self._pids.add(pid)
            return not self.closed

    def discard(self, pid: int) -> None:
        with self._lock:
            self._pids.discard(pid)

    def running(self) -> list[int]:
        with self._lock:
            return list(self._pids)

    def terminate_all(self, grace: float = KILL_GRACE_SECONDS) -> None:
        """SIGTERM every group, then SIGKILL what is left after ``grace`` seconds."""
        with self._lock:
            self.closed = True
            pids = list(self._pids)
        for pid in pids:
            kill_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(group_alive(p) for p in pids):
            time.sleep(0.02)
        for pid in pids:
            kill_group(pid, signal.SIGKILL)


def readable(sources: Sequence[Any], timeout: float) -> list[Any]:
    """Those of ``sources`` (descriptors, or objects with ``fileno()``) ready to read within
    ``timeout`` seconds. ``poll``, not ``select``: a run with hundreds of steps in flight
    has descriptors above select's 1024."""
    poller = select.poll()
    by_fd = {}
    for source in sources:
        fd = source if isinstance(source, int) else source.fileno()
        by_fd[fd] = source
        poller.register(fd, select.POLLIN)
    return [by_fd[fd] for fd, _ in poller.poll(max(0.0, timeout) * 1000)]


def kill_group(pgid: int, sig: int) -> None:
    if pgid <= 0:  # not started yet: killpg(0) would signal attest's own group
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def run_command(command: str, *, cwd: Path, env: Mapping[str, str], log_path: Path,
                timeout: float | None, registry: ProcessRegistry,
                on_line: Callable[[str], None] | None = None,
                mask: Callable[[str], str] | None = None,
                launcher: StepLauncher | None = None) -> ProcessOutcome:
    """Run ``command`` to completion on this thread (see :class:`RunningCommand`)."""
    running = RunningCommand(command, cwd=cwd, env=env, log_path=log_path, timeout=timeout,
                             registry=registry, on_line=on_line, mask=mask, launcher=launcher)
    try:
        while (wait := running.tick(time.monotonic())) is not None:
            ready = readable(running.sources, wait)
            running.ready(ready)
    except BaseException:  # a log write that failed, say: the step is stopped, not leaked
        running.abort()
        raise
    return running.finish()


class RunningCommand:
    """One step's command from its spawn to its outcome; whoever waits for it drives it.

    Its merged stdout/stderr go to ``log_path``, created on the first line of output only: a
    step that prints nothing leaves no file, and readers take a missing log as an empty one.

    The driver polls :attr:`sources` for at most what :meth:`tick` says (None: the step
    is over), hands what became ready to :meth:`ready`, then takes :meth:`finish`.
    :func:`run_command` drives one on its own thread; the scheduler's event loop drives all
    of a run's steps on one thread (no thread per step nor hand-offs between threads). The
    wait wakes up on output, at the deadline, and at least every ``_IDLE`` seconds to notice
    a child that exited while something it left behind still holds the pipe open. The step
    is over when its shell exits: what is already in the pipe is drained for at most
    :data:`DRAIN_SECONDS` / :data:`DRAIN_BYTES`, and a process that detached itself
    (``setsid``) and keeps the pipe open can never hold the run.

    With a ``launcher`` (``engine/launcher.py``) the step is spawned by that small process,
    which reaps it and sends its status and rusage: its peak RSS is then the step's own,
    not attest's. Without one, if it is gone, or if it refuses the request, attest spawns
    and reaps the step itself. ``wait_for_pid=False`` returns before the launcher has
    spawned the step: the pid arrives with the first :meth:`ready`. ``limit`` > 0 queues
    the step in the launcher until fewer than ``limit`` of its steps run (and none of
    ``group`` failed): its wall time and its timeout then start when it is spawned, not
    when it was sent.
    """

    def __init__(self, command: str, *, cwd: Path, env: Mapping[str, str], log_path: Path,
                 timeout: float | None, registry: ProcessRegistry,
                 on_line: Callable[[str], None] | None = None,
                 mask: Callable[[str], str] | None = None,
                 launcher: StepLauncher | None = None, wait_for_pid: bool = True,
                 limit: int = 0, group: str = "", fail_fast: bool = False) -> None:
        self.started = time.monotonic()
        self._timeout = timeout
        self._launcher, self._group, self._fail_fast = launcher, group, fail_fast
        self._command, self._cwd, self._env = command, cwd, env
        self._registry = registry
        self._on_line, self._mask = on_line, mask
        self._launched: LaunchedStep | None = None
        self._floor: int | None = None
        self._fd = -1
        self._watch: _Watch | None = None
        self.pid = 0  # 0 until the launcher says (never signalled: killpg(0) is our group)
        if launcher is not None and launcher.usable:
            with contextlib.suppress(LauncherGone):
                self._launched, self._fd = launcher.spawn(command, cwd, env,
                                                          wait=wait_for_pid, limit=limit,
                                                          group=group, fail_fast=fail_fast)
        # queued in the launcher: no clock runs until it is spawned (see _started)
        self.queued = self._launched is not None and limit > 0
        self._watch = _Watch(self, self.started, None if self.queued or not timeout
                             else self.started + timeout, self._exited,
                             grace=LATE_EXIT_RECORD if self._launched is not None else 0.0)
        if self._launched is None:
            self._spawn_here()
        else:
            self._started(self._launched.pid)
        self._pending = b""
        self._log = _LazyLog(log_path)
        self._eof = False

    @property
    def sources(self) -> list[Any]:
        """What to poll: the output pipe, and the launcher's socket while it is open;
        nothing once the output ended (see :meth:`tick`)."""
        if self._eof:
            return []
        launched = self._launched
        return [self._fd] if launched is None or launched.closed else [self._fd, launched]

    def _spawn_here(self) -> None:
        self._floor = own_peak_rss()
        pid, self._fd = _spawn(self._command, self._cwd, self._env)
        self._started(pid)

    def _started(self, pid: int) -> None:
        if pid and not self.pid:
            self.pid = pid
            spawned = self._launched.spawned_at if self._launched is not None else None
            if self.queued and spawned is not None:
                assert self._watch is not None
                self.started = spawned
                self._watch.start(spawned, spawned + self._timeout if self._timeout else None)
            if not self._registry.add(pid):  # started just as the run was interrupted
                kill_group(pid, signal.SIGKILL)
            elif self._watch is not None and self._watch.timed_out:  # its deadline came first
                kill_group(pid, signal.SIGTERM)

    def _refused(self) -> None:
        """The launcher did not start the step (its socket closed without a pid): attest
        spawns it itself."""
        assert self._launched is not None
        self._launched.chan.close()
        self._launched = None
        fd, self._fd = self._fd, -1
        os.close(fd)
        if self.queued:  # its clock starts now
            self.queued = False
            assert self._watch is not None
            self.started = time.monotonic()
            self._watch.start(self.started,
                              self.started + self._timeout if self._timeout else None)
        self._spawn_here()

    def cancel(self) -> bool:
        """Take back a step still queued in the launcher; True if it never started (then
        it is closed, and over). False if it had started after all (its pid came): it
        runs on, to be driven and finished like any other. Waits at most
        :data:`ABORT_PID_WAIT` seconds for the launcher's answer; without one, the step's
        socket is closed, and the launcher kills it if it spawns it later (its pid can no
        longer be sent)."""
        launched = self._launched
        if not self.queued or launched is None or self.pid or launched.closed:
            return False
        if self._take_back(launched) and launched.pid:
            self._started(launched.pid)
            return False
        self._pending = b""
        with contextlib.suppress(OSError):
            self.close()
        launched.chan.close()
        return True

    def _take_back(self, launched: LaunchedStep) -> bool:
        """Wait at most :data:`ABORT_PID_WAIT` seconds for the launcher's pid or for it to
        close the step's socket; a queued step's socket is shut first, so that the launcher
        drops it at once. False if neither came in time."""
        if self.queued:
            with contextlib.suppress(OSError):
                launched.chan.shutdown(_socket.SHUT_WR)
        deadline = time.monotonic() + ABORT_PID_WAIT
        while not launched.pid and not launched.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with contextlib.suppress(OSError, ValueError):
                if readable([launched], left):
                    launched.pump()
        return True

    def _stopping(self) -> None:
        """The step is being stopped (its timeout): with fail-fast, its run stops too, so
        the launcher starts no more of the run's queued steps, even if this one then exits
        0 (a shell that traps SIGTERM)."""
        if self._fail_fast and self._launcher is not None and self._launched is not None:
            self._launcher.hold(self._group)

    def _exited(self) -> bool:
        launched = self._launched
        if launched is None:
            return _has_exited(self.pid)
        if launched.status is None and not launched.closed and readable([launched], 0):
            launched.pump()  # an exit record already sent, not read yet by the loop
            self._started(launched.pid)
        return launched.exited

    def tick(self, now: float) -> float | None:
        """How long the driver may wait for :attr:`sources`; None once the step is over.

        The end of a launched step's output is its end: the launcher keeps the pipe open
        until it has reaped the step. A child of attest's own may outlive its output (``exec
        cmd >log``): it is then looked at every :data:`_REAP_POLL` seconds, its timeout
        still enforced, so that no driver ever blocks in ``wait4`` for it."""
        assert self._watch is not None
        wait = self._watch.tick(now)
        if not self._eof:
            return wait
        if self._launched is not None or wait is None or self._exited():
            return None
        return min(wait, _REAP_POLL)

    def ready(self, ready: Sequence[Any]) -> None:
        """Read what the poll found ready (blocks on nothing else)."""
        assert self._watch is not None
        launched = self._launched
        if launched is not None and launched in ready:
            launched.pump()
            self._started(launched.pid)
            if launched.closed and not launched.pid:
                self._refused()
                return
        if self._fd in ready:
            chunk = os.read(self._fd, 65536)
            if not chunk:
                if launched is not None and not launched.pid:
                    # the output ended before a pid came: the launcher refused the request
                    # (it closes the pipe, then the socket) or is gone; its socket says which
                    while not launched.pid and not launched.closed:
                        launched.pump()
                    self._started(launched.pid)
                    if not launched.pid:
                        self._refused()
                        return
                self._eof = True
                return
            self._watch.read(len(chunk))
            self._pending = self._emit(self._pending + chunk)

    def _emit(self, chunk: bytes, final: bool = False) -> bytes:
        lines = chunk.split(b"\n")
        rest = b"" if final else lines.pop()
        for raw in lines:
            if final and not raw:
                continue
            text = raw.decode("utf-8", errors="replace")
            if self._mask is not None:
                text = self._mask(text)
            self._log.write(text + "\n")
            if self._on_line is not None:
                self._on_line(text.rstrip("\r"))
        return rest

    def close(self) -> None:
        """Release the pipe and the log (also when the driver gave up on the step)."""
        try:
            if self._pending:
                self._emit(self._pending, final=True)
                self._pending = b""
        finally:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            self._log.close()

    def abort(self) -> None:
        """Give up on the step (its driver failed: a log write hit a full disk, say): kill
        its group and release what it holds. Never raises: the error that made the driver
        give up is the one to report, and output not yet written is dropped. A step the
        launcher is starting at this moment is waited for (at most :data:`ABORT_PID_WAIT`
        seconds) so that it is stopped too; the launcher also stops a step whose pid it can
        no longer send."""
        launched = self._launched
        if launched is not None and not self.pid and not launched.closed:
            self._take_back(launched)
            self._started(launched.pid)
        kill_group(self.pid, signal.SIGKILL)
        self._registry.discard(self.pid)
        if launched is None and self.pid:  # ours to reap, if it died already
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, os.WNOHANG)
        self._pending = b""
        with contextlib.suppress(OSError):
            self.close()
        if launched is not None:
            launched.chan.close()

    def finish(self) -> ProcessOutcome:
        """Reap the step (or take what the launcher reaped) and say how it went."""
        self.close()
        launched, pid = self._launched, self.pid
        if launched is not None:
            launched.wait_exited()
            self._started(launched.pid)
            pid = self.pid
            if launched.status is None:  # the launcher died: the step's status is unknown
                kill_group(pid, signal.SIGKILL)
                launched.status = 1 << 8
            status, floor = launched.status, launched.floor
            user, system, maxrss_kib = launched.utime, launched.stime, launched.maxrss_kib
        else:
            floor = self._floor
            while True:
                try:
                    _, status, usage = os.wait4(pid, 0)
                    break
                except InterruptedError:  # pragma: no cover - PEP 475 retries for us
                    continue
            user, system, maxrss_kib = usage.ru_utime, usage.ru_stime, usage.ru_maxrss
        wall = time.monotonic() - self.started
        if launched is not None and launched.exited_at is not None and \
                launched.spawned_at is not None:  # the launcher's clock: no hand-off in it
            wall = max(0.0, launched.exited_at - launched.spawned_at)
        self._registry.discard(pid)
        code = os.waitstatus_to_exitcode(status)
        sig = -code if code < 0 else None
        if sig:
            code = 128 + sig
        watch = self._watch
        assert watch is not None
        return ProcessOutcome(
            # a step stopped by its timeout never reports the code it died with (a shell
            # that traps SIGTERM may well exit 0): it reports 124, as coreutils' timeout(1)
            exit_code=TIMEOUT_EXIT_CODE if watch.timed_out else code,
            wall_seconds=wall,
            cpu_user_seconds=user,
            cpu_system_seconds=system,
            max_rss_bytes=maxrss_kib * 1024,  # Linux reports KiB
            max_rss_floor_bytes=floor,
            timed_out=watch.timed_out,
            signal=sig,
            logged=self._log.opened,
            spawned_at=launched.spawned_at if launched is not None and self.queued else None,
        )


class _LazyLog:
    """A step's log file, opened on the first write: thousands of silent steps would
    otherwise leave thousands of empty files per run (issue 14)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: TextIO | None = None

    def write(self, text: str) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - closed below
        self._fh.write(text)

    @property
    def opened(self) -> bool:
        return self._fh is not None

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


class _Watch:
    """The clock side of :class:`RunningCommand`: timeout, kill escalation, the drain bound.

    Kept apart from the read loop so that the loop stays a plain poll/read: ``tick``
    says how long the loop may block, or None when it must stop reading.
    """

    def __init__(self, command: RunningCommand, started: float, deadline: float | None,
                 exited: Callable[[], bool], *, grace: float = 0.0) -> None:
        self._command = command  # its pid: 0 until the launcher has sent it
        self._exited = exited
        self.deadline = deadline
        # how long after the deadline an exit may still be reported (LATE_EXIT_RECORD)
        self._grace = grace
        self.timed_out = False
        self.kill_at: float | None = None  # when to SIGKILL after a SIGTERM
        self.exited_at: float | None = None
        self.orphans_termed = False
        self.drained = 0  # bytes read since the shell exited
        # a step that ends by itself closes the pipe: no exit check until _IDLE has passed
        self._next_check = started + _IDLE

    def start(self, started: float, deadline: float | None) -> None:
        """The step was spawned at ``started`` (it waited in the launcher's queue)."""
        self.deadline = deadline
        self._next_check = started + _IDLE

    def tick(self, now: float) -> float | None:
        due_deadline = (self.deadline is not None and not self.timed_out
                        and self.exited_at is None and now >= self.deadline + self._grace)
        if now >= self._next_check or due_deadline:
            self._next_check = now + _IDLE
            if self.exited_at is None and self._exited():
                self.exited_at = now
            if self.exited_at is None:
                if due_deadline:
                    self.timed_out = True
                    self._command._stopping()
                    kill_group(self._command.pid, signal.SIGTERM)
                    self.kill_at = now + KILL_GRACE_SECONDS
                if self.kill_at is not None and now >= self.kill_at:
                    kill_group(self._command.pid, signal.SIGKILL)
                    if self._command.pid:  # else again at the next check, once it is known
                        self.kill_at = None
            else:
                since = now - self.exited_at
                if since >= DRAIN_SECONDS or self.drained >= DRAIN_BYTES:
                    # The shell is gone; what holds the pipe now is either left in the step's
                    # group (SIGTERMed at _ORPHAN_GRACE: now SIGKILL) or detached from it.
                    kill_group(self._command.pid, signal.SIGKILL)
                    return None
                if since >= _ORPHAN_GRACE and not self.orphans_termed:
                    self.orphans_termed = True
                    kill_group(self._command.pid, signal.SIGTERM)
        wait = max(0.0, self._next_check - now)
        if self.deadline is not None and not self.timed_out and self.exited_at is None:
            wait = max(0.0, min(wait, self.deadline + self._grace - now))
        return wait

    def read(self, n: int) -> None:
        if self.exited_at is not None:
            self.drained += n


def _spawn(command: str, cwd: Path, env: Mapping[str, str]) -> tuple[int, int]:
    """Start ``command`` (``/bin/sh -c`` unless it is a simple command: see
    :func:`~attest_cli.engine.launcher_server.spawn_command`) in a new session; return its
    pid and our read end.

    ``os.posix_spawn`` (vfork + exec in C) is about 15% cheaper per step than
    ``subprocess.Popen``, but cannot change directory in the child: it is used when the step
    runs where attest already is (the usual case), ``Popen(cwd=...)`` otherwise. Either way
    we reap the child ourselves with ``os.wait4`` for its rusage.
    """
    read_fd, write_fd = os.pipe()  # both close-on-exec; dup2 below clears it on 1 and 2
    try:
        if os.path.realpath(cwd) == os.path.realpath(os.getcwd()):
            # Python ignores SIGPIPE and SIGXFSZ; an ignored signal survives exec, so reset
            # them as Popen(restore_signals=True) does (else `yes | head` reports EPIPE).
            pid = spawn_command(command, dict(env), write_fd,
                                (signal.SIGPIPE, signal.SIGXFSZ))
        else:
            pid = _popen(command, str(cwd), dict(env), write_fd)
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    return pid, read_fd


def _popen(command: str, cwd: str, env: dict[str, str], out_fd: int) -> int:
    """``Popen(cwd=...)``: a simple command directly, as in the launcher, else the shell."""
    direct = direct_argv(command, env, cwd)
    if direct is not None:
        with contextlib.suppress(OSError):  # the shell decides (ENOEXEC: a script)
            return _popen_argv(direct[1], cwd, shell_env(env, cwd), out_fd, direct[0])
    return _popen_argv(["/bin/sh", "-c", command], cwd, env, out_fd, None)


def _popen_argv(argv: list[str], cwd: str, env: dict[str, str], out_fd: int,
                executable: str | None) -> int:
    import subprocess  # this fallback only: not part of every run's start-up

    proc = subprocess.Popen(argv, executable=executable, cwd=cwd, env=env,
                            stdin=subprocess.DEVNULL, stdout=out_fd, stderr=out_fd,
                            start_new_session=True)
    proc.returncode = 0  # reaped by our wait4, never by the Popen object
    return proc.pid


def own_peak_rss() -> int | None:
    """This process's peak RSS (VmHWM), which a child inherits as its rusage floor."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


_IDLE = 0.1
_ORPHAN_GRACE = 0.5
_REAP_POLL = 0.01  # a child of attest's own whose output ended: how often to look at it
ABORT_PID_WAIT = 0.5  # RunningCommand.abort: how long to wait for a pid being sent


def _has_exited(pid: int) -> bool:
    """True once ``pid`` has exited, without reaping it (we still want its rusage)."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None
