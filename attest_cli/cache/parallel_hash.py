"""Hash many files on two cores: a helper process from the head of the list, this one from the tail.

Threads cannot do it here. Reading and hashing a 25 KB file is ~15 µs, and every ``open``,
``read`` and BLAKE3 call gives up the GIL. With two threads, each of those calls became a
GIL hand-off between them. 10,000 files took 192 ms on two threads and 148 ms on one, with
twice the CPU (2 cores, CPython 3.11).

A second process has no GIL to share. :mod:`attest_cli.cache.hash_worker` runs in a bare
``python -I -S``, started in ~10 ms, and only when the work looks worth it. It is sent
each file as the caller finds it, hashes from the head and streams its results back. Once
the caller has found them all, :meth:`SharedHashing.finish` hashes from the tail, and every
few files it moves more of the list into the helper's pipe and takes what the helper
finished, both without blocking. The two meet wherever their speeds put the meeting point,
so neither waits for the other. If the helper cannot start, dies or is slow, this process
simply hashes more. Whatever the helper could not read is done again here, so its error is
reported by the normal path.

A file may be handed over before anyone has ``lstat``-ed it (a file the stat index does not
know, on a first run): whoever hashes it ``lstat``-s it first, so that the scan's own
``lstat`` pass is shared too, and one that is not a small regular file comes back as None
for the caller to look at.

An ``multiprocessing``/``concurrent.futures`` pool would have started a full attest
interpreter (re-importing the CLI) per worker, and it needs pickling and a result thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import sys
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

WORKER = Path(__file__).with_name("hash_worker.py")
FS_ENCODING = (sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())  # os.fsencode
# b"+" (hashed), b"-" (could not read) or b"n" (not a small regular file), the 32-byte
# digest, then what lstat said of a file sent without a size (dev, ino, size, mtime_ns,
# ctime_ns, mode)
STAT = struct.Struct("<QQqqqQ")
RESULT = 33 + STAT.size
UNKNOWN = -1  # the size of a file nobody has lstat-ed yet
PUMP_EVERY = 16  # files added or hashed here between two looks at the helper's pipes
PIPE_BYTES = 1 << 20  # Linux's default pipe-max-size
# The helper is worth starting when the work is ~3x its start-up. The estimate is per file
# plus per byte, measured on 2 cores: 10,000 x 25 KB took 150 ms on one.
MIN_ESTIMATE_MS = 45.0
MS_PER_FILE = 0.010
BYTES_PER_MS = 2_000_000
UNKNOWN_BYTES = 16_384  # assumed of a file not lstat-ed yet
MIN_SAMPLE = 16  # files added before the extrapolation is trusted


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class _Helper:
    """The helper process and the two non-blocking pipe ends this side pumps."""

    def __init__(self, big: int) -> None:
        import subprocess  # only with a helper: not part of every run's start-up

        import blake3

        site = str(Path(blake3.__file__).resolve().parent.parent)
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(WORKER), site, str(big)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.wfd, self.rfd = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        with contextlib.suppress(OSError, AttributeError):  # Linux: the whole list at once
            fcntl.fcntl(self.wfd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        os.set_blocking(self.wfd, False)
        os.set_blocking(self.rfd, False)
        self.queued = 0  # how many of the caller's files are in ``unsent`` or the pipe
        self.unsent: deque[memoryview] = deque()  # what the pipe did not take yet
        self.buf = b""
        self.results: list[bytes] = []  # for the list's first, second, ... files
        self.alive = True

    def pump(self, paths: list[str], sizes: list[int], *, last: bool = False) -> None:
        """Queue the files added since the last pump, send what the pipe takes, take what
        the helper finished; never wait.

        ``last``: nothing more will be added (the helper may end once it has it all)."""
        if not self.alive:
            return
        if self.queued < len(paths):
            text = "".join([f"{s}\t{p}\0" for p, s in zip(paths[self.queued:],
                                                           sizes[self.queued:], strict=True)])
            self.unsent.append(memoryview(text.encode(*FS_ENCODING)))
            self.queued = len(paths)
        try:
            while self.unsent:
                head = self.unsent[0]
                sent = os.write(self.wfd, head)
                if sent < len(head):
                    self.unsent[0] = head[sent:]
                    break
                self.unsent.popleft()
            stdin = self.proc.stdin
            if last and not self.unsent and stdin is not None and not stdin.closed:
                stdin.close()  # the helper may end once it has hashed everything
        except BlockingIOError:
            pass  # the pipe is full: more next time
        except OSError:  # it died (EPIPE): this side hashes the rest
            self.alive = False
            return
        try:
            chunk = os.read(self.rfd, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            self.alive = False
            return
        if not chunk:
            self.alive = False
            return
        data = self.buf + chunk
        whole = len(data) - len(data) % RESULT
        self.results.extend(data[i:i + RESULT] for i in range(0, whole, RESULT))
        self.buf = data[whole:]

    def stop(self) -> None:
        stop_helper(self.proc)


def stop_helper(proc: subprocess.Popen[bytes]) -> None:
    """Kill a helper that is still running, close this side's pipes, reap it."""
    if proc.poll() is None:
        proc.kill()
    for f in (proc.stdin, proc.stdout):
        if f is not None and not f.closed:
            with contextlib.suppress(OSError):
                f.close()
    proc.wait()


Fields = tuple[int, int, int, int, int, int]  # dev, ino, size, mtime_ns, ctime_ns, mode
Hashed = tuple[str, Fields | None] | None


class SharedHashing:
    """Files to hash, handed over as they are found; their digests at :meth:`finish`.

    ``hash_one(path, size)`` does one file here: for a known ``size``, ``(digest, None)``;
    for :data:`UNKNOWN`, it ``lstat``-s the file first and gives ``(digest, fields)``, or
    None when it is not a regular file under ``big`` bytes (the caller looks at it then).
    It is also what raises for a file that cannot be read. ``expected`` is how many paths
    the caller will go through (``position`` in :meth:`add` counts them): the helper starts
    as soon as the work extrapolated from what was added so far is worth it."""

    def __init__(self, hash_one: Callable[[str, int], Hashed], *, expected: int, big: int
                 ) -> None:
        self.hash_one = hash_one
        self.expected = expected
        self.big = big
        self.paths: list[str] = []
        self.sizes: list[int] = []
        self.estimate_ms = 0.0
        self.helper: _Helper | None = None
        self.tried = False

    def add(self, path: str, size: int, position: int) -> None:
        self.paths.append(path)
        self.sizes.append(size)
        if self.helper is not None:
            if len(self.paths) % PUMP_EVERY == 0:
                self.helper.pump(self.paths, self.sizes)
            return
        if self.tried:
            return
        self.estimate_ms += MS_PER_FILE + (UNKNOWN_BYTES if size < 0 else size) / BYTES_PER_MS
        if len(self.paths) >= MIN_SAMPLE and \
                self.estimate_ms * self.expected / (position + 1) >= MIN_ESTIMATE_MS:
            self.tried = True
            if usable_cores() < 2:
                return
            try:
                self.helper = _Helper(self.big)
            except OSError:
                return
            self.helper.pump(self.paths, self.sizes)

    def finish(self) -> list[Hashed]:
        """Every result, in the order the files were added."""
        paths, sizes, hash_one, helper = self.paths, self.sizes, self.hash_one, self.helper
        if helper is None:
            return [hash_one(p, s) for p, s in zip(paths, sizes, strict=True)]
        done: list[Hashed] = [None] * len(paths)
        have = [False] * len(paths)  # (None is a result too: "not a small regular file")
        try:
            helper.pump(paths, sizes, last=True)
            j = len(paths)
            while j > len(helper.results):
                j -= 1
                done[j], have[j] = hash_one(paths[j], sizes[j]), True
                if j % PUMP_EVERY == 0:
                    helper.pump(paths, sizes, last=True)
            for k, result in enumerate(helper.results[:j]):
                if result[0] == 0x2B:  # "+"
                    fields = STAT.unpack_from(result, 33) if sizes[k] < 0 else None
                    done[k], have[k] = ("blake3:" + result[1:33].hex(), fields), True
        finally:
            helper.stop()
        return [d if ok else hash_one(p, s)
                for d, ok, p, s in zip(done, have, paths, sizes, strict=True)]

    def close(self) -> None:
        """Stop the helper if :meth:`finish` was never reached (an error while adding)."""
        if self.helper is not None and self.helper.proc.returncode is None:
            self.helper.stop()
