"""The step launcher: a small interpreter that spawns every step, so a step's peak RSS is its own.

Run as a script (``python -S -I launcher_server.py FD``), never imported by attest: it
must stay small, so it imports only built-in modules (no ``socket``, which pulls ``enum``).
Linux starts a program's peak-RSS figure (``ru_maxrss``) at the peak of the address space
that called exec. Spawned from attest (tens of MiB after its imports), every step would
report at least attest's own peak; spawned from this process, a step starts at about
7 MiB. See ``engine/launcher.py`` for attest's side and docs/profiling.md for the limits.

Protocol, per step: attest sends on the control socket (fd ``FD``, SOCK_SEQPACKET) one
message: the ``marshal`` of ``(command, cwd, env)`` and two descriptors, the write end of
the step's output pipe and the launcher's end of a stream socket for the step. The
launcher answers on that stream socket with fixed-size records (see :data:`RECORD`): ``P``
the pid and the peak RSS the step inherits at exec (its floor), then ``X`` the wait
status and rusage. A request it cannot serve gets no ``P``: the socket closes and attest
spawns the step itself.
"""

from __future__ import annotations

import _socket
import _struct
import marshal
import os
import select
import signal
import sys

RECORD = _struct.Struct("<c7xqqdd")  # tag, a, b, c, d: 40 bytes, one write each
# posix_spawn's child runs on a stack of its own in the launcher's address space, and
# Python builds the argument arrays after the floor is read: the floor it reports includes
# this margin, so that a step whose figure is at or below the floor is never called exact.
FLOOR_MARGIN = 256 * 1024
MAX_REQUEST = 192 * 1024  # one datagram: under the default socket buffer (208 KiB)
_RESET = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGCHLD)
_CANNOT_ENTER = 'printf "attest: cannot enter %s: %s\\n" "$1" "$2" >&2; exit 127'


def _peak_rss() -> int:
    """This process's VmHWM: what a program it spawns starts its ru_maxrss at."""
    fd = os.open("/proc/self/status", os.O_RDONLY)
    try:
        data = os.read(fd, 8192)
    finally:
        os.close(fd)
    at = data.find(b"VmHWM:")
    return int(data[at + 6:data.index(b"k", at)]) * 1024 if at >= 0 else 0


def _send(chan: _socket.socket, tag: bytes, a: int, b: int, c: float, d: float) -> bool:
    """Send one record; False if attest closed the step's socket (it no longer waits)."""
    try:
        chan.send(RECORD.pack(tag, a, b, c, d))
    except OSError:
        return False
    return True


def _spawn(out_fd: int, command: str, cwd: str, env: dict[str, str]) -> tuple[int, int]:
    """``/bin/sh -c command`` in ``cwd`` and a new session; return its pid and floor.

    The launcher is single-threaded, so it may change its own directory for the child
    (posix_spawn cannot). ``posix_spawn`` is vfork + exec: no copy of the address space.
    """
    argv = ["/bin/sh", "-c", command]
    try:
        if os.getcwd() != cwd:
            os.chdir(cwd)
    except OSError as exc:
        argv = ["/bin/sh", "-c", _CANNOT_ENTER, "sh", cwd, exc.strerror or str(exc)]
    floor = _peak_rss() + FLOOR_MARGIN
    pid = os.posix_spawn(argv[0], argv, env, setsid=True, setsigdef=_RESET,
                         file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                                       (os.POSIX_SPAWN_DUP2, out_fd, 1),
                                       (os.POSIX_SPAWN_DUP2, out_fd, 2)])
    return pid, floor


def main(control_fd: int) -> None:
    os.set_inheritable(control_fd, False)
    control = _socket.socket(fileno=control_fd)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    steps: dict[int, tuple[_socket.socket, int]] = {}
    fd_size = 4
    while True:
        try:
            ready, _, _ = select.select([control_fd, wake_r], [], [])
        except InterruptedError:  # pragma: no cover - PEP 475 retries
            continue
        if wake_r in ready:
            os.read(wake_r, 4096)
        if control_fd in ready:
            msg, anc, _, _ = control.recvmsg(MAX_REQUEST, _socket.CMSG_LEN(2 * fd_size),
                                             _socket.MSG_CMSG_CLOEXEC)
            if not msg:
                break  # attest is gone
            fds = [int.from_bytes(data[i:i + fd_size], "little")
                   for _, _, data in anc for i in range(0, len(data), fd_size)]
            out_fd, chan = fds[0], _socket.socket(fileno=fds[1])
            try:
                command, cwd, env = marshal.loads(msg)
                pid, floor = _spawn(out_fd, command, cwd, env)
            except (EOFError, OSError, ValueError, TypeError):
                os.close(out_fd)
                chan.close()  # attest sees no pid and spawns the step itself
                continue
            # the output's write end stays open here until the step is reaped: attest then
            # sees the exit record and the end of the output at once (one wake-up, not two)
            steps[pid] = (chan, out_fd)
            _send(chan, b"P", pid, floor, 0.0, 0.0)
        while steps:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            done = steps.pop(pid, None)
            if done is not None:
                _send(done[0], b"X", status, usage.ru_maxrss, usage.ru_utime, usage.ru_stime)
                done[0].close()
                os.close(done[1])


def daemon_half(control_fd: int) -> None:
    """Fork once and let the child serve: its address space holds only what it touches.

    A fork copies the page-table entries of what this interpreter's start-up touched
    (about 7 MiB, against its 9 MiB peak), and the child's peak grows only with what
    serving steps touches. The parent waits, so attest can still wait for the launcher.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # attest's handler stops the steps
    pid = os.fork()
    if pid:
        os.close(control_fd)  # so that attest sees the socket close if the child dies
        os._exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) & 0xFF)


if __name__ == "__main__":
    control_fd = int(sys.argv[1])
    daemon_half(control_fd)
    main(control_fd)
