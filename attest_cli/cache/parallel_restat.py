"""The check that a step's inputs did not change while it ran, shared with a helper process.

Before a step's outputs are stored, every input is ``lstat``-ed again and compared with the
signature its key was computed from (:func:`~attest_cli.cache.statindex.restat`). Over
10,000 inputs that is ~20 ms, a tenth of a cold run's work beyond its start-up, and the
store's other walk (the inputs' vouchers, ~11 ms) waits behind it. Threads cannot share
it: each ``lstat`` gives up the GIL (see parallel_hash for the figures).

So, past :data:`SHARE_FROM` inputs on two cores or more, :class:`RestatCheck` hands the
head of the list to :mod:`attest_cli.cache.stat_worker` (a bare ``python -I -S``, ~8 ms to
start), the caller walks the vouchers meanwhile, and :meth:`RestatCheck.finish` checks the
tail here before it reads the helper's answer. A helper that cannot start, cannot take the
whole list at once, or answers anything but one byte per file leaves its part to this
process: the answer is the same either way.

The helper may be started before the step runs (``begin=False``, as the cache does on a
miss): it then has its list and waits, and checks nothing before :meth:`RestatCheck.begin`
ends its input, once the step has ended. Its start-up overlaps the step instead of
following it (it was ~12 ms of the 35 ms a 10,000-input store spent checking).
"""

from __future__ import annotations

import contextlib
import fcntl
import marshal
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from attest_cli.cache.parallel_hash import PIPE_BYTES, stop_helper, usable_cores
from attest_cli.cache.statindex import FileState, restat

if TYPE_CHECKING:
    import subprocess

WORKER = Path(__file__).with_name("stat_worker.py")
SHARE_FROM = 4096  # inputs: below, the helper's start-up is more than its share
HELPER_SHARE = 0.6  # of the files, from the head: it starts ~8 ms after this side
EARLY_SHARE = 0.5  # ... or, started before the step ran, as soon as the step ends


class RestatCheck:
    """:func:`restat` of ``states``, begun now (the helper's part) and ended by
    :meth:`finish`; :meth:`close` stops a helper whose answer was never read."""

    def __init__(self, root: Path, states: Sequence[FileState], *, begin: bool = True
                 ) -> None:
        self.root = root
        self.states = states
        self.proc: subprocess.Popen[bytes] | None = None
        self.head: list[FileState] = []
        if len(states) >= SHARE_FROM and usable_cores() >= 2:
            self._start(HELPER_SHARE if begin else EARLY_SHARE)
        if begin:
            self.begin()

    def begin(self) -> None:
        """The step has ended: the helper checks its part now (it reads its input to the
        end before it looks at any file)."""
        stdin = self.proc.stdin if self.proc is not None else None
        if stdin is not None and not stdin.closed:
            with contextlib.suppress(OSError):
                stdin.close()

    def _start(self, share: float) -> None:
        cut = int(len(self.states) * share)
        head = [s for s in self.states[:cut] if s.target_signature is None]
        prefix = str(self.root).rstrip("/") + "/"
        # marshal, version 2 (no references to track): ~3x faster to build than text, and
        # the helper compares tuples instead of formatting each signature (its part of the
        # check is the longer one)
        try:
            payload = marshal.dumps([(prefix + s.path, s.signature) for s in head], 2)
        except ValueError:  # not a plain path or signature: this side checks everything
            return
        import subprocess  # only with a helper: not part of every run's start-up

        try:
            proc = subprocess.Popen([sys.executable, "-I", "-S", str(WORKER)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, close_fds=True)
        except OSError:
            return
        assert proc.stdin is not None
        try:
            fd = proc.stdin.fileno()
            size = fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
            if len(payload) > size:  # it would block until the helper reads: not worth it
                raise BlockingIOError
            os.set_blocking(fd, False)
            if os.write(fd, payload) != len(payload):
                raise BlockingIOError
        except (OSError, AttributeError):
            stop_helper(proc)
            return
        self.proc, self.head = proc, head

    def finish(self) -> list[str]:
        """The paths whose signature differs now, in the order of ``states``."""
        self.begin()
        proc, self.proc = self.proc, None
        if proc is None:
            return restat(self.root, self.states)
        mine = {id(s) for s in self.head}
        tail = restat(self.root, [s for s in self.states if id(s) not in mine])
        try:
            assert proc.stdout is not None
            answer = proc.stdout.read()
        except OSError:
            answer = b""
        finally:
            stop_helper(proc)
        if len(answer) != len(self.head) or answer.translate(None, b"=!"):
            head = restat(self.root, self.head)  # no usable answer: this side checks
        else:
            head = [s.path for s, byte in zip(self.head, answer, strict=True) if byte != 0x3D]
        changed = set(head) | set(tail)
        return [s.path for s in self.states if s.path in changed]

    def close(self) -> None:
        if self.proc is not None:
            stop_helper(self.proc)
            self.proc = None
