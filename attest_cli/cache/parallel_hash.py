"""Hash many files on two cores: this process from the head of the list, a helper from the tail.

Threads cannot do it here. Reading and hashing a 25 KB file is ~15 µs, and every ``open``,
``read`` and BLAKE3 call gives up the GIL. With two threads, each of those calls became a
GIL hand-off between them. 10,000 files took 192 ms on two threads and 148 ms on one, with
twice the CPU (2 cores, CPython 3.11).

A second process has no GIL to share. :mod:`attest_cli.cache.hash_worker` runs in a bare
``python -I -S``, started in ~15 ms, and only when the work would take much longer than
that. It is sent the list tail first and streams 33-byte results back. This process hashes
from the head and, every few files, moves more of the list into the helper's pipe and takes
what it has finished, both without blocking. The two meet wherever their speeds put the
meeting point, so neither waits for the other. If the helper cannot start, dies or is slow,
this process simply hashes more. Whatever the helper could not read is hashed again here,
so its error is reported by the normal path.

An ``multiprocessing``/``concurrent.futures`` pool would have started a full attest
interpreter (re-importing the CLI) per worker, and it needs pickling and a result thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from pathlib import Path

WORKER = Path(__file__).with_name("hash_worker.py")
FS_ENCODING = (sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())  # os.fsencode
RESULT = 33  # b"+" or b"-", then the 32-byte digest
PUMP_EVERY = 16  # files added or hashed here between two looks at the helper's pipes
PIPE_BYTES = 1 << 20  # Linux's default pipe-max-size
# The helper is worth starting when the work is ~3x its start-up. The estimate is per file
# plus per byte, measured on 2 cores: 10,000 x 25 KB took 150 ms on one.
MIN_ESTIMATE_MS = 45.0
MS_PER_FILE = 0.010
BYTES_PER_MS = 2_000_000


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class _Helper:
    """The helper process and the two non-blocking pipe ends this side pumps."""

    def __init__(self) -> None:
        import blake3

        site = str(Path(blake3.__file__).resolve().parent.parent)
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(WORKER), site], stdin=subprocess.PIPE,
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
        if self.proc.poll() is None:
            self.proc.kill()
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None and not f.closed:
                f.close()
        self.proc.wait()


class SharedHashing:
    """Files to hash, handed over as they are found; their digests at :meth:`finish`.

    The helper starts once the files added so far are worth it, and is sent each file as
    it is added (the caller is still ``lstat``-ing the rest, so hashing starts during that
    walk). :meth:`finish` hashes from the tail here while the helper goes on from the head.
    ``hash_one(path, size)`` must give the ``blake3:<hex>`` digest of the file's content; it
    is also what reports a file that cannot be read."""

    def __init__(self, hash_one: Callable[[str, int], str]) -> None:
        self.hash_one = hash_one
        self.paths: list[str] = []
        self.sizes: list[int] = []
        self.estimate_ms = 0.0
        self.helper: _Helper | None = None
        self.tried = False

    def add(self, path: str, size: int) -> None:
        self.paths.append(path)
        self.sizes.append(size)
        if self.helper is not None:
            if len(self.paths) % PUMP_EVERY == 0:
                self.helper.pump(self.paths, self.sizes)
            return
        if self.tried:
            return
        self.estimate_ms += MS_PER_FILE + size / BYTES_PER_MS
        if self.estimate_ms >= MIN_ESTIMATE_MS:
            self.tried = True
            if usable_cores() < 2:
                return
            try:
                self.helper = _Helper()
            except OSError:
                return
            self.helper.pump(self.paths, self.sizes)

    def finish(self) -> list[str]:
        """Every digest, in the order the files were added."""
        paths, sizes, hash_one, helper = self.paths, self.sizes, self.hash_one, self.helper
        if helper is None:
            return [hash_one(p, s) for p, s in zip(paths, sizes, strict=True)]
        digests: list[str | None] = [None] * len(paths)
        try:
            helper.pump(paths, sizes, last=True)
            j = len(paths)
            while j > len(helper.results):
                j -= 1
                digests[j] = hash_one(paths[j], sizes[j])
                if j % PUMP_EVERY == 0:
                    helper.pump(paths, sizes, last=True)
            for k, result in enumerate(helper.results[:j]):
                if result[0] == 0x2B:  # "+"
                    digests[k] = "blake3:" + result[1:].hex()
        finally:
            helper.stop()
        return [d if d is not None else hash_one(p, s)
                for d, p, s in zip(digests, paths, sizes, strict=True)]

    def close(self) -> None:
        """Stop the helper if :meth:`finish` was never reached (an error while adding)."""
        if self.helper is not None and self.helper.proc.returncode is None:
            self.helper.stop()

