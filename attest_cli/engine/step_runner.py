"""The real :class:`StepRunner` and :class:`Clock`: processes and the system's time.

The scheduler takes both as constructor arguments so that tests can swap in the fakes of
``engine/testing.py``; these are the defaults. The runner starts the process's step launcher
(``engine/launcher.py``) when it is built, so that steps report their own peak RSS.
"""

from __future__ import annotations

import time

from attest_cli.engine.interfaces import StepRequest
from attest_cli.engine.launcher import shared_launcher
from attest_cli.engine.process import (
    ProcessOutcome,
    ProcessRegistry,
    RunningCommand,
    run_command,
)


class ProcessStepRunner:
    """Runs each step as a process group (``engine/process.py``); an interrupt kills them."""

    def __init__(self) -> None:
        self.registry = ProcessRegistry()
        shared_launcher()  # start it now: its start-up overlaps the run's until the first step

    def run(self, request: StepRequest) -> ProcessOutcome:
        return run_command(request.command, cwd=request.cwd, env=request.env,
                           log_path=request.log_path, timeout=request.timeout,
                           registry=self.registry, mask=request.mask, on_line=request.on_line,
                           launcher=shared_launcher())

    def start(self, request: StepRequest, *, limit: int = 0, group: str = "",
              fail_fast: bool = False) -> RunningCommand:
        """The step's command, started and not waited for (the scheduler's event loop
        drives it: :class:`~attest_cli.engine.process.RunningCommand`); ``limit`` > 0 has
        the launcher hold it until fewer than ``limit`` of its commands run and, once
        ``group`` is held (:meth:`hold`, or with ``fail_fast`` a step of it failed), for
        good (the scheduler then takes it back: ``RunningCommand.cancel``)."""
        return RunningCommand(request.command, cwd=request.cwd, env=request.env,
                              log_path=request.log_path, timeout=request.timeout,
                              registry=self.registry, mask=request.mask,
                              on_line=request.on_line, launcher=shared_launcher(),
                              wait_for_pid=False, limit=limit, group=group,
                              fail_fast=fail_fast)

    def queues_commands(self) -> bool:
        """Whether :meth:`start` with a ``limit`` holds commands back (the launcher is
        running); without it they start at once."""
        return shared_launcher() is not None

    def hold(self, group: str) -> None:
        """Start none of ``group``'s queued commands from now on (its run stops)."""
        launcher = shared_launcher()
        if launcher is not None:
            launcher.hold(group)

    def terminate_all(self) -> None:
        self.registry.terminate_all()


class SystemClock:
    """``time.monotonic`` and ``time.time``."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()
