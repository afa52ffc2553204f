"""Run one step's command: own process group, captured output, timeout, resource usage.

Each step runs as ``/bin/sh -c`` in a new session so that a timeout or an interrupt can
kill the whole tree (``killpg``) and nothing is orphaned. We reap the child ourselves with
``os.wait4`` to get its rusage (CPU and peak RSS of the tree it waited for) and then set
``Popen.returncode`` so the object does not wait a second time.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

KILL_GRACE_SECONDS = 3.0


@dataclass
class ProcessOutcome:
    exit_code: int
    wall_seconds: float
    cpu_user_seconds: float
    cpu_system_seconds: float
    max_rss_bytes: int
    # attest's own peak RSS when it spawned the step. Linux charges a child with its parent's
    # high-water mark at exec, so a reported peak at or below this is an upper bound only.
    max_rss_floor_bytes: int | None = None
    timed_out: bool = False
    signal: int | None = None


class ProcessRegistry:
    """The process groups currently running, so an interrupt can stop them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pids: set[int] = set()

    def add(self, pid: int) -> None:
        with self._lock:
            self._pids.add(pid)

    def discard(self, pid: int) -> None:
        with self._lock:
            self._pids.discard(pid)

    def running(self) -> list[int]:
        with self._lock:
            return list(self._pids)

    def terminate_all(self, grace: float = KILL_GRACE_SECONDS) -> None:
        """SIGTERM every group, then SIGKILL what is left after ``grace`` seconds."""
        pids = self.running()
        for pid in pids:
            kill_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(group_alive(p) for p in pids):
            time.sleep(0.02)
        for pid in pids:
            kill_group(pid, signal.SIGKILL)


def kill_group(pgid: int, sig: int) -> None:
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
                mask: Callable[[str], str] | None = None) -> ProcessOutcome:
    """Run ``command`` to completion; its merged stdout/stderr go to ``log_path``.

    One thread does everything (read output, enforce the timeout, reap): a step costs one
    thread, which keeps the per-step overhead close to make's. The read loop wakes up only
    on output, at the deadline, or every ``_IDLE`` seconds to notice a child that exited
    while a background grandchild still holds the pipe open.
    """
    floor = own_peak_rss()
    started = time.monotonic()
    pid, fd = _spawn(command, cwd, env)
    registry.add(pid)
    deadline = started + timeout if timeout else None
    timed_out = False
    kill_at: float | None = None  # when to SIGKILL after a SIGTERM
    exited_at: float | None = None
    pending = b""
    try:
        with open(log_path, "w", encoding="utf-8") as log:
            def emit(chunk: bytes, final: bool = False) -> bytes:
                lines = chunk.split(b"\n")
                rest = b"" if final else lines.pop()
                for raw in lines:
                    if final and not raw:
                        continue
                    text = raw.decode("utf-8", errors="replace")
                    if mask is not None:
                        text = mask(text)
                    log.write(text + "\n")
                    if on_line is not None:
                        on_line(text.rstrip("\r"))
                return rest

            while True:
                now = time.monotonic()
                wait = _IDLE
                if deadline is not None and not timed_out:
                    wait = max(0.0, min(wait, deadline - now))
                ready, _, _ = select.select([fd], [], [], wait)
                if ready:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        break
                    pending = emit(pending + chunk)
                    continue
                now = time.monotonic()
                if deadline is not None and not timed_out and now >= deadline:
                    timed_out = True
                    kill_group(pid, signal.SIGTERM)
                    kill_at = now + KILL_GRACE_SECONDS
                if kill_at is not None and now >= kill_at:
                    kill_group(pid, signal.SIGKILL)
                    kill_at = None
                if exited_at is None and _has_exited(pid):
                    exited_at = now
                if exited_at is not None and now - exited_at > _ORPHAN_GRACE:
                    # The shell is gone but something it left behind holds our pipe.
                    kill_group(pid, signal.SIGTERM)
                    kill_at = kill_at or now + KILL_GRACE_SECONDS
            if pending:
                emit(pending, final=True)
    finally:
        os.close(fd)
    while True:
        try:
            _, status, usage = os.wait4(pid, 0)
            break
        except InterruptedError:  # pragma: no cover - PEP 475 retries for us
            continue
    wall = time.monotonic() - started
    registry.discard(pid)
    code = os.waitstatus_to_exitcode(status)
    sig = -code if code < 0 else None
    return ProcessOutcome(
        exit_code=128 + sig if sig else code,
        wall_seconds=wall,
        cpu_user_seconds=usage.ru_utime,
        cpu_system_seconds=usage.ru_stime,
        max_rss_bytes=usage.ru_maxrss * 1024,  # Linux reports KiB
        max_rss_floor_bytes=floor,
        timed_out=timed_out,
        signal=sig,
    )


def _spawn(command: str, cwd: Path, env: Mapping[str, str]) -> tuple[int, int]:
    """Start ``/bin/sh -c command`` in a new session; return its pid and our read end.

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
            pid = os.posix_spawn("/bin/sh", ["/bin/sh", "-c", command], env, setsid=True,
                                 setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
                                 file_actions=[
                                     (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                                     (os.POSIX_SPAWN_DUP2, write_fd, 1),
                                     (os.POSIX_SPAWN_DUP2, write_fd, 2)])
        else:
            proc = subprocess.Popen(["/bin/sh", "-c", command], cwd=cwd, env=dict(env),
                                    stdin=subprocess.DEVNULL, stdout=write_fd,
                                    stderr=write_fd, start_new_session=True)
            pid = proc.pid
            proc.returncode = 0  # reaped by our wait4, never by the Popen object
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    return pid, read_fd


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


def _has_exited(pid: int) -> bool:
    """True once ``pid`` has exited, without reaping it (we still want its rusage)."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None
