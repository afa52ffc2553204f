"""Run one step's command: own process group, captured output, timeout, resource usage.

Each step runs as ``/bin/sh -c`` in a new session so that a timeout or an interrupt can
kill the whole tree (``killpg``) and nothing is orphaned. We reap the child ourselves with
``os.wait4`` to get its rusage (CPU and peak RSS of the tree it waited for) and then set
``Popen.returncode`` so the object does not wait a second time.
"""

from __future__ import annotations

import contextlib
import os
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
    """Run ``command`` to completion; its merged stdout/stderr go to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    proc = subprocess.Popen(
        ["/bin/sh", "-c", command], cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    registry.add(proc.pid)
    assert proc.stdout is not None
    reader = threading.Thread(target=_pump, args=(proc.stdout, log_path, on_line, mask),
                              name=f"attest-log-{proc.pid}", daemon=True)
    reader.start()
    timed_out = threading.Event()
    timer: threading.Timer | None = None
    if timeout:
        def expire() -> None:
            timed_out.set()
            kill_group(proc.pid, signal.SIGTERM)
            killer = threading.Timer(KILL_GRACE_SECONDS, kill_group, (proc.pid, signal.SIGKILL))
            killer.daemon = True
            killer.start()
        timer = threading.Timer(timeout, expire)
        timer.daemon = True
        timer.start()
    try:
        while True:
            try:
                _, status, usage = os.wait4(proc.pid, 0)
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries for us
                continue
    finally:
        if timer:
            timer.cancel()
    wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    # A background child may still hold the pipe open; give it a moment, then end the group.
    reader.join(timeout=0.5)
    if reader.is_alive():
        kill_group(proc.pid, signal.SIGTERM)
        reader.join(timeout=KILL_GRACE_SECONDS)
        if reader.is_alive():
            kill_group(proc.pid, signal.SIGKILL)
            reader.join()
    registry.discard(proc.pid)
    code = proc.returncode
    sig = -code if code < 0 else None
    return ProcessOutcome(
        exit_code=128 + sig if sig else code,
        wall_seconds=wall,
        cpu_user_seconds=usage.ru_utime,
        cpu_system_seconds=usage.ru_stime,
        max_rss_bytes=usage.ru_maxrss * 1024,  # Linux reports KiB
        timed_out=timed_out.is_set(),
        signal=sig,
    )


def _pump(stream: object, log_path: Path, on_line: Callable[[str], None] | None,
          mask: Callable[[str], str] | None) -> None:
    with open(log_path, "w", encoding="utf-8") as log:
        for raw in stream:  # type: ignore[attr-defined]
            text = raw.decode("utf-8", errors="replace")
            if mask is not None:
                text = mask(text)
            log.write(text)
            if on_line is not None:
                on_line(text.rstrip("\r\n"))
    stream.close()  # type: ignore[attr-defined]
