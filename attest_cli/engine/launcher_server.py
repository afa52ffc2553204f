"""The step launcher: a small interpreter that spawns every step, so a step's peak RSS is its own.

Run as a script (``python -S -I launcher_server.py FD``; attest imports it only for
:func:`spawn_command`): it must stay small, so it imports only built-in modules (no
``socket``, which pulls ``enum``).
Linux starts a program's peak-RSS figure (``ru_maxrss``) at the peak of the address space
that called exec. Spawned from attest (tens of MiB after its imports), every step would
report at least attest's own peak; spawned from this process, a step starts at about
7 MiB. See ``engine/launcher.py`` for attest's side and docs/profiling.md for the limits.

Protocol, per step: attest sends on the control socket (fd ``FD``, SOCK_SEQPACKET) one
message: the ``marshal`` of ``(command, cwd, env, limit, group, fail_fast)`` and two
descriptors, the write end of the step's output pipe and the launcher's end of a stream
socket for the step. The launcher answers on that stream socket with fixed-size records
(see :data:`RECORD`): ``P`` the pid, the peak RSS the step inherits at exec (its floor) and
when it was spawned, then ``X`` the wait status, rusage and when it was reaped
(``time.monotonic``: one clock for every process of the machine). A request it cannot
serve gets no ``P``: the socket closes and attest spawns the step itself.

``limit`` 0 spawns the step at once. A positive ``limit`` queues it: requests are spawned
in the order they came, each once fewer than ``limit`` of the launcher's steps are running.
attest's event loop looks the next steps up while ``-j`` commands run and sends them
ahead, so that when a step exits the launcher reaps it and starts the next at once: before,
every exit went to attest and back (two wake-ups of processes on the other core, and
attest's bookkeeping in between) while the slot stood empty - about a tenth of a 1,000-step
cold build. The exit records of the steps reaped go out after the next ones are spawned: a
record wakes attest, and a spawn holds the launcher until its child has a core and execs,
so attest's bookkeeping would compete with the spawn (~2% of that build). A queued step
whose socket attest shuts (it takes the step back) is dropped unspawned.

``group`` is the run's id. Once a group is *held*, none of its queued steps is spawned
(attest takes them back): attest holds its run, with a message of two fields, ``("hold",
group)`` and no descriptors, when the run stops, on an interrupt before it stops the
steps, and with fail-fast before it stops a step that timed out; with ``fail_fast`` the
launcher also holds the group itself as soon as one of its steps exits other than 0,
before attest has even read the exit record.

A simple command (plain words, no shell syntax: :func:`direct_argv`) is spawned as the
shell would run it, without the shell: dash forks for it and waits, so ``/bin/sh -c`` cost
a second process per step (about 0.8 ms of CPU for ``cp a b``, a third of a cold build's
children). attest imports :func:`spawn_command` for its own fallback spawn.
"""

from __future__ import annotations

import _socket
import _struct
import marshal
import os
import select
import signal
import sys
from time import monotonic

RECORD = _struct.Struct("<c7xqqddd")  # tag, a, b, c, d, e: 48 bytes, one write each
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


def _send(chan: _socket.socket, tag: bytes, a: int, b: int, c: float, d: float,
          e: float) -> bool:
    """Send one record; False if attest closed the step's socket (it no longer waits)."""
    try:
        chan.send(RECORD.pack(tag, a, b, c, d, e))
    except OSError:
        return False
    return True


# A command made of these characters only is plain words: nothing for the shell to expand,
# quote, redirect or chain.
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./,:+=@% ")
# dash's reserved words and builtins: a first word among them needs the shell (``true`` and
# ``false`` do the same as /bin/true and /bin/false, and are spawned directly).
_SHELL_WORDS = frozenset((
    "!", "{", "}", "case", "do", "done", "elif", "else", "esac", "fi", "for", "if", "in",
    "then", "until", "while", ".", ":", "[", "alias", "bg", "break", "cd", "chdir", "command",
    "continue", "echo", "eval", "exec", "exit", "export", "fc", "fg", "getopts", "hash",
    "jobs", "kill", "local", "printf", "pwd", "read", "readonly", "return", "set", "shift",
    "test", "times", "trap", "type", "ulimit", "umask", "unalias", "unset", "wait"))


def direct_argv(command: str, env: dict[str, str],
                cwd: str = ".") -> tuple[str, list[str]] | None:
    """The program and argv ``/bin/sh -c command`` would exec in ``cwd``, or None if it
    needs the shell.

    Only plain words (:data:`_PLAIN`), the first neither an assignment nor a shell word
    (:data:`_SHELL_WORDS`), looked up in the step's ``PATH`` as dash does (the first regular,
    executable file; relative entries from ``cwd``). None without a ``PATH``, or when
    nothing is found: the shell then runs it and reports the error as it always did.
    """
    if not _PLAIN.issuperset(command):
        return None
    argv = command.split()
    if not argv or "=" in argv[0] or argv[0] in _SHELL_WORDS:
        return None
    name = argv[0]
    if "/" in name:
        return (name if cwd == "." else os.path.join(cwd, name)), argv
    path = env.get("PATH")
    if path is None:
        return None
    for entry in path.split(":"):
        if entry.startswith("/"):  # most entries: no join (~1 µs each, on every step)
            candidate = entry + name if entry.endswith("/") else f"{entry}/{name}"
        else:
            candidate = os.path.join(cwd, entry, name)
        # access first: one call that answers False for the entries that lack the name
        # (most of them) without raising, where a stat raises; ~12 µs a step for a PATH
        # of ten entries
        if os.access(candidate, os.X_OK) and os.path.isfile(candidate):
            return candidate, argv
    return None


def shell_env(env: dict[str, str], cwd: str = ".") -> dict[str, str]:
    """``env`` as the shell in ``cwd`` would pass it on: dash exports ``PWD``, the real
    directory, unless the inherited one already names it."""
    pwd = env.get("PWD")
    if pwd and pwd.startswith("/"):
        try:
            here, there = os.stat(cwd), os.stat(pwd)
            if (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino):
                return env
        except OSError:
            pass
    return {**env, "PWD": os.path.realpath(cwd)}


def spawn_command(command: str, env: dict[str, str], out_fd: int,
                  setsigdef: tuple[int, ...], argv: list[str] | None = None) -> int:
    """Spawn ``command`` in the current directory and a new session, stdin on /dev/null and
    stdout/stderr on ``out_fd``: directly when it is a simple command, else (or if the
    direct exec fails: a script without ``#!``, a file gone since) ``/bin/sh -c command``.
    ``argv`` forces that shell command line. ``posix_spawn`` is vfork + exec."""
    actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
               (os.POSIX_SPAWN_DUP2, out_fd, 1), (os.POSIX_SPAWN_DUP2, out_fd, 2)]
    if argv is None:
        direct = direct_argv(command, env)
        if direct is not None:
            try:
                return os.posix_spawn(direct[0], direct[1], shell_env(env), setsid=True,
                                      setsigdef=setsigdef, file_actions=actions)
            except OSError:
                pass  # the shell decides (ENOEXEC: it runs the file as a script)
        argv = ["/bin/sh", "-c", command]
    return os.posix_spawn(argv[0], argv, env, setsid=True, setsigdef=setsigdef,
                          file_actions=actions)


def _spawn(out_fd: int, command: str, cwd: str, env: dict[str, str]) -> tuple[int, int]:
    """The step in ``cwd`` and a new session (:func:`spawn_command`); its pid and floor.

    The launcher is single-threaded, so it may change its own directory for the child
    (posix_spawn cannot).
    """
    argv = None
    try:
        if os.getcwd() != cwd:
            os.chdir(cwd)
    except OSError as exc:
        argv = ["/bin/sh", "-c", _CANNOT_ENTER, "sh", cwd, exc.strerror or str(exc)]
    floor = _peak_rss() + FLOOR_MARGIN
    return spawn_command(command, env, out_fd, _RESET, argv), floor


class _Request:
    """A step attest asked for, until it is spawned (or dropped)."""

    __slots__ = ("chan", "command", "cwd", "env", "fail_fast", "group", "limit", "out_fd")

    def __init__(self, chan: _socket.socket, out_fd: int, command: str, cwd: str,
                 env: dict[str, str], limit: int, group: str, fail_fast: bool) -> None:
        self.chan, self.out_fd = chan, out_fd
        self.command, self.cwd, self.env, self.limit = command, cwd, env, limit
        self.group, self.fail_fast = group, fail_fast

    def drop(self) -> None:
        """Close both ends: attest sees the socket close without a pid."""
        self.chan.close()
        os.close(self.out_fd)


def main(control_fd: int) -> None:
    os.set_inheritable(control_fd, False)
    control = _socket.socket(fileno=control_fd)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    steps: dict[int, _Request] = {}
    queued: dict[int, _Request] = {}  # by socket descriptor, in the order they came
    held: set[str] = set()  # runs that stop: their queued steps wait for attest's drop
    fd_size = 4
    # one buffer for every request: recvmsg would map (and unmap) 192 KiB per step
    buf = bytearray(MAX_REQUEST)
    # poll, not select: a queued step's descriptor may be above select's 1024
    poller = select.poll()
    poller.register(control_fd, select.POLLIN)
    poller.register(wake_r, select.POLLIN)
    while True:
        try:
            ready = {fd for fd, _ in poller.poll()}
        except InterruptedError:  # pragma: no cover - PEP 475 retries
            continue
        if wake_r in ready:
            os.read(wake_r, 4096)
        # a queued step's socket turns readable when attest gives up on it: dropped at
        # once, so that attest's wait for the answer is short
        for fd in [fd for fd in ready if fd in queued]:
            poller.unregister(fd)
            queued.pop(fd).drop()
        if control_fd in ready:
            size, anc, _, _ = control.recvmsg_into([buf], _socket.CMSG_LEN(2 * fd_size),
                                                   _socket.MSG_CMSG_CLOEXEC)
            if not size:
                break  # attest is gone
            fds = [int.from_bytes(data[i:i + fd_size], "little")
                   for _, _, data in anc for i in range(0, len(data), fd_size)]
            request = _request(memoryview(buf)[:size], fds, held)
            if request is not None and request.limit > 0:
                fd = request.chan.fileno()
                queued[fd] = request
                poller.register(fd, select.POLLIN)
            elif request is not None:
                _start(request, steps)
        ended = _reap(steps, held)
        while (first := _next(queued, held)) is not None and len(steps) < first.limit:
            fd = first.chan.fileno()
            poller.unregister(fd)
            del queued[fd]
            _start(first, steps)  # taken back since the poll: attest reads the pid, it runs
        # the exit records go out after the next spawns: each wakes attest, whose
        # bookkeeping would then compete with the spawn for a core (and a spawn holds
        # this process until its child has a core and execs)
        _report(ended)


def _request(payload: memoryview, fds: list[int], held: set[str]) -> _Request | None:
    """The request in one message; None for a hold (or one that cannot be read: its
    socket closes, and attest spawns the step itself)."""
    if not fds:
        try:
            kind, group = marshal.loads(payload)
            if kind == "hold":
                held.add(str(group))
        except (EOFError, ValueError, TypeError):
            pass
        return None
    # family, type and protocol given: the socket object asks the kernel for none
    out_fd, chan = fds[0], _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, fds[1])
    try:
        command, cwd, env, limit, group, fail_fast = marshal.loads(payload)
        return _Request(chan, out_fd, command, cwd, env, int(limit), str(group),
                        bool(fail_fast))
    except (EOFError, ValueError, TypeError):
        chan.close()
        os.close(out_fd)
        return None


def _next(queued: dict[int, _Request], held: set[str]) -> _Request | None:
    """The first queued request whose run is not held."""
    for request in queued.values():
        if request.group not in held:
            return request
    return None


def _start(request: _Request, steps: dict[int, _Request]) -> None:
    """Spawn a request's step and send its pid and when it was spawned."""
    at = monotonic()  # before: the step may run a while before this process is back
    try:
        pid, floor = _spawn(request.out_fd, request.command, request.cwd, request.env)
    except (OSError, ValueError, TypeError):
        request.drop()  # attest sees no pid and spawns the step itself
        return
    # the output's write end stays open here until the step is reaped: attest then sees
    # the exit record and the end of the output at once (one wake-up, not two)
    steps[pid] = request
    if not _send(request.chan, b"P", pid, floor, at, 0.0, 0.0):
        try:  # noqa: SIM105 - built-in modules only here (no contextlib)
            os.killpg(pid, signal.SIGKILL)  # attest gave up on it meanwhile
        except OSError:
            pass


# a reaped step: its wait status, peak RSS, user and system CPU, when it was reaped
_Ended = tuple[_Request, int, int, float, float, float]


def _reap(steps: dict[int, _Request], held: set[str]) -> list[_Ended]:
    """Reap every step that ended (for :func:`_report`); a failed step holds its run's
    queued steps back at once."""
    ended: list[_Ended] = []
    while steps:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        done = steps.pop(pid, None)
        if done is not None:
            if status and done.fail_fast:
                held.add(done.group)
            ended.append((done, status, usage.ru_maxrss, usage.ru_utime, usage.ru_stime,
                          monotonic()))
    return ended


def _report(ended: list[_Ended]) -> None:
    """Send each reaped step's exit record and let go of its descriptors."""
    for done, status, maxrss, utime, stime, at in ended:
        _send(done.chan, b"X", status, maxrss, utime, stime, at)
        done.drop()


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


def close_inherited(keep: int) -> None:
    """Close every descriptor above stderr but ``keep``: one attest inherited without
    close-on-exec (a CI runner's, make's jobserver) must not reach the steps."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:  # no /proc: nothing to walk (attest's own are close-on-exec)
        return
    for name in names:
        fd = int(name)
        if fd > 2 and fd != keep:
            try:  # noqa: SIM105 - built-in modules only here (no contextlib)
                os.close(fd)
            except OSError:  # the listing's own descriptor, closed already
                pass


if __name__ == "__main__":
    control_fd = int(sys.argv[1])
    close_inherited(control_fd)
    daemon_half(control_fd)
    main(control_fd)
    os._exit(0)  # nothing to flush or free: attest waits for this exit (launcher.close)
