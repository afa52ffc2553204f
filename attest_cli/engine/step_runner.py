"""The real :class:`StepRunner` and :class:`Clock`: processes and the system's time.

The scheduler takes both as constructor arguments so that tests can swap in the fakes of
``engine/testing.py``; these are the defaults. The runner starts the step launcher
(``engine/launcher.py``) with its first step, so that steps report their own peak RSS.
"""

from __future__ import annotations

import threading
import time
import weakref

from attest_cli.engine.interfaces import StepRequest
from attest_cli.engine.launcher import StepLauncher, start_launcher
from attest_cli.engine.process import ProcessOutcome, ProcessRegistry, run_command


class ProcessStepRunner:
    """Runs each step as a process group (``engine/process.py``); an interrupt kills them."""

    def __init__(self) -> None:
        self.registry = ProcessRegistry()
        self._launcher: StepLauncher | None = None
        self._launcher_lock = threading.Lock()
        self._launcher_tried = False

    def launcher(self) -> StepLauncher | None:
        """The run's step launcher, started on first use (None where it cannot run)."""
        with self._launcher_lock:
            if not self._launcher_tried:
                self._launcher_tried = True
                self._launcher = start_launcher()
                if self._launcher is not None:
                    weakref.finalize(self, self._launcher.close)
            return self._launcher

    def run(self, request: StepRequest) -> ProcessOutcome:
        return run_command(request.command, cwd=request.cwd, env=request.env,
                           log_path=request.log_path, timeout=request.timeout,
                           registry=self.registry, mask=request.mask, on_line=request.on_line,
                           launcher=self.launcher())

    def terminate_all(self) -> None:
        self.registry.terminate_all()


class SystemClock:
    """``time.monotonic`` and ``time.time``."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()
