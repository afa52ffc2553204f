"""Memory profiling with memray, saved in memray's capture format (LZ4-compressed).

memray writes the capture itself while tracking, so we point it at a temporary name beside
the target and rename when tracking has ended: a crash leaves no half capture under the
name the user asked for. ``follow_fork`` also records forked children (``FILE.<pid>``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any


class MemoryRecorder:
    """Record every allocation of this process (and of forked children) with memray."""

    kind = "memory"

    def __init__(self, target: Path, *, native: bool) -> None:
        self.target = target
        self.native = native
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        self._tracker: Any = None

    @property
    def tool(self) -> str:
        from memray._version import __version__

        return f"memray {__version__}"

    def start(self) -> None:
        import memray

        destination = memray.FileDestination(self._tmp, overwrite=True, compress_on_exit=True)
        self._tracker = memray.Tracker(destination=destination, native_traces=self.native,
                                       follow_fork=True)
        self._tracker.__enter__()

    def stop(self) -> None:
        if self._tracker is not None:
            tracker, self._tracker = self._tracker, None
            tracker.__exit__(None, None, None)

    def save(self, path: Path) -> dict[str, Any]:
        """Move the finished capture (and any forked children's) under ``path``."""
        from memray import FileReader

        os.replace(self._tmp, path)
        children = 0
        for child in self._tmp.parent.glob(self._tmp.name + ".*"):
            os.replace(child, f"{path}.{child.name.rsplit('.', 1)[-1]}")
            children += 1
        meta = FileReader(os.fspath(path)).metadata
        return {"peak_memory_bytes": int(meta.peak_memory),
                "allocations": int(meta.total_allocations), "native": self.native,
                "children": children}

    def discard(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        for leftover in [self._tmp, *self._tmp.parent.glob(self._tmp.name + ".*")]:
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
