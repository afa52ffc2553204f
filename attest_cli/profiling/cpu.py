"""CPU profiling with pyinstrument, saved in pyinstrument's own session format.

The file is exactly what ``Session.save`` writes (JSON), so ``pyinstrument --load FILE``
opens it too; we only write it atomically so a crash never leaves half a profile.

pyinstrument samples one thread, but attest does much of its own work (spawning, cache
hashing, log pumping) in per-step worker threads. While recording, every new thread's
``run`` is wrapped in a profiler of its own and the sessions are combined at the end with
``Session.combine`` — the tree then has one branch per thread, and its duration is the sum
of the threads' durations (pyinstrument documents combined sessions as aggregate views).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from attest_cli.atomic import write_atomic


class CpuRecorder:
    """Sample the calling thread's Python stack every ``interval`` seconds (asyncio-aware)."""

    kind = "cpu"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._profiler: Any = None
        self._session: Any = None
        self._thread_sessions: list[Any] = []
        self._lock = threading.Lock()
        self._recording = False
        self._original_run: Any = None
        self._wall = 0.0
        self._threads = 0

    @property
    def tool(self) -> str:
        import pyinstrument

        return f"pyinstrument {pyinstrument.__version__}"

    def start(self) -> None:
        from pyinstrument import Profiler

        self._profiler = Profiler(interval=self.interval, async_mode="enabled")
        self._recording = True
        self._follow_threads()
        self._profiler.start()

    def stop(self) -> None:
        if self._profiler is not None and self._profiler.is_running:
            self._session = self._profiler.stop()
        self._recording = False
        if self._original_run is not None:
            threading.Thread.run = self._original_run  # type: ignore[method-assign]
            self._original_run = None
        with self._lock:
            thread_sessions, self._thread_sessions = self._thread_sessions, []
        if self._session is not None:
            self._wall = float(self._session.duration)
            self._threads = 1 + len(thread_sessions)
        if self._session is not None and thread_sessions:
            from pyinstrument.session import Session

            for extra in thread_sessions:
                self._session = Session.combine(self._session, extra)

    def _follow_threads(self) -> None:
        """Profile each thread started while recording, in that thread, until it ends."""
        from pyinstrument import Profiler

        recorder = self
        original = self._original_run = threading.Thread.run

        def run(thread: threading.Thread) -> None:
            if not recorder._recording:
                original(thread)
                return
            profiler = Profiler(interval=recorder.interval, async_mode="disabled")
            profiler.start()
            try:
                original(thread)
            finally:
                session = profiler.stop()
                with recorder._lock:
                    if recorder._recording:
                        recorder._thread_sessions.append(session)

        threading.Thread.run = run  # type: ignore[method-assign,assignment]

    def save(self, path: Path) -> dict[str, Any]:
        """Write the session to ``path``; return facts worth printing (samples, duration)."""
        session = self._session
        if session is None:
            raise RuntimeError("the CPU profiler recorded nothing")
        write_atomic(path, json.dumps(session.to_json()))
        return {"samples": int(session.sample_count), "duration_seconds": round(self._wall, 6),
                "threads": self._threads, "cpu_seconds": round(float(session.cpu_time or 0), 6),
                "interval": self.interval}

    def discard(self) -> None:
        self.stop()
        self._session = None
