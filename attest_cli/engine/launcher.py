"""attest's side of the step launcher: steps spawned by a small process report their own peak.

Linux starts a new program's peak RSS (``ru_maxrss``) at the peak of the address space it
replaced at exec. A step spawned by attest itself would therefore never report less than
attest's own peak (35 MiB and up, once its libraries are imported), and a step's figure
was only an upper bound. :class:`StepLauncher` starts ``launcher_server.py`` (a fresh
``python -S -I`` with built-in modules only, forked once so that its address space holds
only what it touches) and has it ``posix_spawn`` and reap every step: a step then starts
at the launcher's floor (about 8 MiB, recorded per step as ``max_rss_floor_bytes``) and
anything above is the step's true peak.

Starting the launcher costs one interpreter start-up, once per attest process and
overlapped with the run's set-up; each step then costs one datagram and one record back
on a Unix socket (see docs/profiling.md for the measured figures). If the launcher cannot
start or dies, steps are spawned by attest directly, as before.
"""

from __future__ import annotations

import _socket  # not socket, whose enums cost ~2 ms of every run's start-up
import array
import atexit
import contextlib
import marshal
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from struct import Struct

SERVER = Path(__file__).with_name("launcher_server.py")
RECORD = Struct("<c7xqqddd")  # the same layout as launcher_server.RECORD
MAX_REQUEST = 192 * 1024  # launcher_server.MAX_REQUEST: one datagram per step
SERVER_FD = 3  # the launcher's end of the control socket, in the launcher


class LauncherGone(OSError):
    """The launcher is not running: spawn the step another way."""


class LaunchedStep:
    """A step the launcher started: its pid, the floor it inherited, then its exit."""

    def __init__(self, chan: _socket.socket) -> None:
        self.chan = chan
        self.pid = 0
        self.floor: int | None = None
        self.spawned_at: float | None = None  # time.monotonic(), the launcher's reading
        self.exited_at: float | None = None
        self.status: int | None = None
        self.maxrss_kib = 0
        self.utime = 0.0
        self.stime = 0.0
        self.closed = False
        self._buf = b""

    def fileno(self) -> int:
        return self.chan.fileno()

    @property
    def exited(self) -> bool:
        return self.status is not None

    def pump(self) -> None:
        """Read what the launcher sent (blocks only if nothing is there yet)."""
        try:
            chunk = self.chan.recv(4096)
        except OSError:
            chunk = b""
        if not chunk:
            self.closed = True
            return
        self._buf += chunk
        while len(self._buf) >= RECORD.size:
            tag, a, b, c, d, e = RECORD.unpack_from(self._buf)
            self._buf = self._buf[RECORD.size:]
            if tag == b"P":
                self.pid, self.floor, self.spawned_at = a, b, c
            elif tag == b"X":
                self.status, self.maxrss_kib, self.utime, self.stime = a, b, c, d
                self.exited_at = e

    def wait_started(self) -> None:
        while not self.pid and not self.closed:
            self.pump()
        if not self.pid:
            raise LauncherGone("the step launcher did not start the step")

    def wait_exited(self) -> None:
        while self.status is None and not self.closed:
            self.pump()
        self.chan.close()


class StepLauncher:
    """One launcher process per run; safe to use from the scheduler's step threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.usable = True
        self._control, remote = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        self.returncode: int | None = None  # the launcher's exit code, once reaped
        self._closed = False
        try:
            self.pid = _start_server(remote.fileno())
        except OSError:
            self._control.close()
            raise
        finally:
            remote.close()

    def spawn(self, command: str, cwd: Path, env: Mapping[str, str], *,
              wait: bool = True, limit: int = 0, group: str = "", fail_fast: bool = False
              ) -> tuple[LaunchedStep, int]:
        """Start ``/bin/sh -c command``; return the step and the read end of its output.

        ``wait=False`` returns as soon as the request is sent: the pid arrives on the step's
        socket (:meth:`LaunchedStep.pump`), and an event loop need not block ~0.5 ms a step
        (the launcher's exec of the step) before it can serve the others. ``limit`` > 0
        queues the step in the launcher until fewer than ``limit`` of its steps run (see
        ``launcher_server``); the pid then comes when it is spawned. Once ``group`` is
        held (:meth:`hold`; with ``fail_fast``, also once a step of it exits other than
        0), its queued steps are not spawned."""
        if not self.usable:
            raise LauncherGone("the step launcher is not running")
        payload = marshal.dumps((command, os.path.abspath(cwd), dict(env), limit, group,
                                 fail_fast))
        if len(payload) > MAX_REQUEST:  # one datagram; a huge environment is spawned by attest
            raise LauncherGone("the step's command and environment exceed one request")
        read_fd, write_fd = os.pipe()
        mine, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
        step = LaunchedStep(mine)
        try:
            fds = array.array("i", [write_fd, theirs.fileno()])
            with self._lock:
                self._control.sendmsg([payload], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
            os.close(write_fd)
            write_fd = -1
            theirs.close()
            if wait:
                step.wait_started()
        except OSError as exc:
            self.usable = False
            if write_fd >= 0:
                os.close(write_fd)
            theirs.close()
            mine.close()
            os.close(read_fd)
            raise LauncherGone(str(exc)) from exc
        return step, read_fd

    def hold(self, group: str) -> None:
        """Spawn none of ``group``'s queued steps from now on (its run is stopping); the
        scheduler drops them. Never raises: a launcher that is gone holds nothing."""
        if not self.usable or not group:
            return
        with self._lock, contextlib.suppress(OSError):
            self._control.sendmsg([marshal.dumps(("hold", group))])

    def close(self) -> None:
        """Stop the launcher (it exits when its control socket closes). Once: its pid may
        be another process's after it is reaped."""
        self.usable = False
        if self._closed:
            return
        self._closed = True
        self._control.close()
        # A pidfd wakes when the launcher exits (polling waitpid with growing sleeps, as
        # Popen.wait does, cost ms of every run's end). Where there is none (Linux < 5.3, a
        # seccomp profile), waitpid is polled for up to the same 2 s.
        try:
            pidfd = os.pidfd_open(self.pid)
        except (OSError, AttributeError):
            pidfd = -1
        if pidfd >= 0:
            try:
                poller = select.poll()  # not select: the descriptor may be above 1024
                poller.register(pidfd, select.POLLIN)
                poller.poll(2000)
            finally:
                os.close(pidfd)
        deadline = time.monotonic() + (0 if pidfd >= 0 else 2.0)
        delay = 0.0005
        while self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped by someone else
                return
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
            elif time.monotonic() >= deadline:
                return  # still running: left to exit when its socket's close reaches it
            else:
                time.sleep(delay)
                delay = min(delay * 2, 0.05)

    def close_at_exit(self, owner: int) -> None:
        """:meth:`close`, registered with atexit: only in the process that started it (a
        forked child inherits the handler, not the launcher)."""
        if os.getpid() == owner:
            self.close()


def _start_server(fd: int) -> int:
    """Spawn launcher_server.py serving on ``fd``, its standard streams on /dev/null.

    ``posix_spawn``, not ``subprocess`` (~1 ms of every run's start-up to import). ``fd``
    stays close-on-exec here (no other thread's spawn can inherit it): the child gets a
    copy at :data:`SERVER_FD`, and the server closes any other descriptor it inherits, as
    ``Popen``'s ``close_fds`` would."""
    # first, as with stdin closed the socket itself may be descriptor 0, 1 or 2; dup2 onto
    # itself (fd 3 already) clears close-on-exec too (POSIX, Austin Group issue 411; glibc
    # and musl do)
    actions: list[tuple[int, ...] | tuple[int, int, str, int, int]] = [
        (os.POSIX_SPAWN_DUP2, fd, SERVER_FD),
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_DUP2, 1, 2)]
    argv = [sys.executable, "-S", "-I", str(SERVER), str(SERVER_FD)]
    return os.posix_spawn(sys.executable, argv, os.environ, file_actions=actions,
                          setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))


_shared: StepLauncher | None = None
_shared_lock = threading.Lock()


def shared_launcher() -> StepLauncher | None:
    """The process's launcher, started on the first call (its start-up overlaps the run's).

    One per attest process, whatever the number of runs in it: requests are one datagram
    each and every step has a socket of its own, so the steps of any thread may share it.
    None where it cannot run or once it is gone (attest then spawns steps itself).
    """
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = start_launcher() or _NONE
            if _shared is not _NONE:
                # Reaped when attest exits: the steps' CPU time then reaches attest's own
                # parent (``time attest run``, hyperfine, CI accounting) as make's does.
                atexit.register(_shared.close_at_exit, os.getpid())
        return _shared if _shared.usable else None


def start_launcher() -> StepLauncher | None:
    """A running launcher, or None where it cannot run (attest then spawns steps itself)."""
    if not sys.platform.startswith("linux") or not sys.executable:
        return None
    try:
        return StepLauncher()
    except OSError:
        return None


class _Unavailable:
    usable = False


_NONE: StepLauncher = _Unavailable()  # type: ignore[assignment]
