"""Who runs a run: process id, host and process start time, and whether that process is gone.

A run killed with ``kill -9`` (or by the OOM killer, or a reboot) never writes its end, so
its history row and run report would say ``running`` forever. Each run records the identity
of its process; a later attest on the same host proves the process dead and marks the run
``abandoned``. A pid alone is not proof: pids are reused, so the identity carries the
process start time (clock ticks since boot, from ``/proc/PID/stat``), the boot id and the
pid namespace.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple


def hostname() -> str:
    """``socket.gethostname()``, which is the node name on POSIX, without importing
    ``socket`` (~2 ms of every run's start-up)."""
    return os.uname().nodename


class ProcessIdentity(NamedTuple):  # not a frozen dataclass: ~0.8 ms less start-up
    pid: int
    host: str
    start: str | None  # "<boot id>/<pid namespace>:<start ticks>"; None without /proc


def _namespace() -> str:
    """This boot and this pid namespace: pids are only comparable within both (two
    containers with one host name may share a history through a volume)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = "-"
    try:
        pidns = os.readlink("/proc/self/ns/pid")
    except OSError:
        pidns = "-"
    return f"{boot}/{pidns}"


def _stat(pid: int) -> tuple[str, str] | None:
    """``(state, start ticks)`` of a process from ``/proc/PID/stat``, or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ..." where comm may hold spaces and parentheses: split after
    # the last ")"; starttime is field 22 of the line, so index 19 of what follows comm.
    fields = text[text.rfind(")") + 2:].split()
    if len(fields) < 20:
        return None
    return fields[0], fields[19]


def start_token(pid: int) -> str | None:
    stat = _stat(pid)
    return None if stat is None else f"{_namespace()}:{stat[1]}"


def current() -> ProcessIdentity:
    pid = os.getpid()
    return ProcessIdentity(pid=pid, host=hostname(), start=start_token(pid))


def is_dead(pid: int | None, host: str | None, start: str | None) -> bool:
    """True only when the process is provably gone: on this host, and the host rebooted
    since, or (in the same pid namespace) no process with that pid exists, it is a zombie,
    or it started at another time (the pid was reused).

    A run of another host, or one recorded without a pid, is never declared dead.
    """
    if pid is None or not host or host != hostname():
        return False
    if start is not None and start.rpartition(":")[0] != _namespace():
        # another boot: every process of it is gone; another pid namespace: cannot tell
        return start.split("/", 1)[0] != _namespace().split("/", 1)[0]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # exists, owned by another user
    stat = _stat(pid)
    if stat is None:
        return False  # no /proc: existence is all we know
    if stat[0] in ("Z", "X"):
        return True
    return start is not None and f"{_namespace()}:{stat[1]}" != start
