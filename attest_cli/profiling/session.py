"""``attest run --profile cpu|memory``: wrap one run in a profiler and link the two.

The profiler observes; it never decides. Whatever the run returns (success, failure,
interrupt) is returned unchanged, and a profile that cannot be written after the run is a
warning, not a new exit code. Problems we can see before the run (a directory where the file
should go, ``--native`` with the CPU profiler) are usage errors and nothing runs.
"""

from __future__ import annotations

import logging
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from attest_cli.errors import NotAvailableError, UsageError
from attest_cli.profiling.link import ProfileLink, link_path, write_link

if TYPE_CHECKING:
    from attest_cli.config.layers import Settings
    from attest_cli.context import AppContext
    from attest_cli.engine.run_report import RunReport
    from attest_cli.pipeline.model import Pipeline
    from attest_cli.profiling.steps import StepCaptures
    from attest_cli.runner.features import RunOptions

log = logging.getLogger("attest.profiling")


class Recorder(Protocol):
    kind: str

    @property
    def tool(self) -> str: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def save(self, path: Path) -> dict[str, Any]: ...
    def discard(self) -> None: ...


@dataclass
class ProfileOutcome:
    """Where the profile went and what it cost; ``error`` when it could not be written."""

    kind: str
    path: Path
    link: Path | None = None
    tool: str = ""
    facts: dict[str, Any] = field(default_factory=dict)
    overhead_seconds: float = 0.0
    error: str | None = None


def default_output(state_dir: Path, run_id: str, kind: str) -> Path:
    return state_dir / "profiles" / f"{run_id}.{kind}.prof"


def profiled(app: AppContext, options: RunOptions,
             loaded: tuple[Pipeline, Settings, list[str]], *, native: bool,
             execute: Callable[[], RunReport]) -> tuple[RunReport, ProfileOutcome]:
    """Run ``execute`` under the profiler named by ``options.profile``; write and link it."""
    kind = options.profile or "cpu"
    settings = loaded[1]
    if kind == "cpu" and native:
        raise UsageError("--native records native frames with memray: use it with "
                         "--profile memory")
    native = native or bool(settings["profiling.native"])  # the config key is memray's only
    requested = app.path(options.profile_output) if options.profile_output else None
    staging = requested or app.state_dir / "profiles" / f"{kind}.prof"
    _check_target(staging, options.profile_output)
    recorder = _recorder(kind, staging, settings, native)
    began = time.perf_counter()
    try:
        recorder.start()
    except Exception as exc:  # e.g. memray allows one tracker per process
        recorder.discard()
        raise UsageError(f"--profile {kind}: {recorder.tool} could not start "
                         f"({' '.join(str(exc).split()) or type(exc).__name__})") from None
    steps = _step_captures(app, options, kind, native)
    overhead = time.perf_counter() - began
    try:
        report = execute()
    except BaseException:
        recorder.discard()
        if steps is not None:
            steps.discard()
        raise
    began = time.perf_counter()
    target = requested or default_output(app.state_dir, report.run_id, kind)
    outcome = ProfileOutcome(kind=kind, path=target)
    try:
        recorder.stop()
        outcome.tool = recorder.tool
        outcome.facts = recorder.save(target)
        if steps is not None:
            outcome.facts["steps"] = steps.finish(report.run_id)
        run_report = app.state_dir / "runs" / f"{report.run_id}.json"
        overhead += time.perf_counter() - began
        link = ProfileLink(kind=kind, tool=outcome.tool, run_id=report.run_id,
                           run_report=str(run_report.resolve()), profiler=outcome.facts,
                           overhead_seconds=overhead, attest_process=_own_usage(),
                           run=report.to_dict())
        outcome.link = write_link(target, link)
    except Exception as exc:  # the run's result stands; the profile is a by-product
        recorder.discard()
        outcome.error = str(exc) or type(exc).__name__
        log.warning("could not write the %s profile %s: %s", kind, target, outcome.error)
    outcome.overhead_seconds = overhead
    return report, outcome


def _step_captures(app: AppContext, options: RunOptions, kind: str,
                   native: bool) -> StepCaptures | None:
    """``--profile-steps``: memray in the steps' Python processes (``profiling/steps.py``)."""
    if not options.profile_steps:
        return None
    if kind != "memory":
        raise UsageError("--profile-steps records memray captures of the steps: use it with "
                         "--profile memory")
    from attest_cli.profiling.steps import StepCaptures

    try:
        return StepCaptures(app, native=native)
    except OSError as exc:
        raise UsageError(f"--profile-steps: cannot create the capture directory under "
                         f"{app.state_dir / 'profiles'} ({exc.strerror})") from None


def _check_target(path: Path, given: str | None) -> None:
    if path.is_dir():
        raise UsageError(f"--profile-output {given or path}: is a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--profile-output {given or path}: cannot create its directory "
                         f"({exc.strerror})") from None
    if link_path(path).is_dir():
        raise UsageError(f"{link_path(path)}: is a directory")


def _recorder(kind: str, staging: Path, settings: Settings, native: bool) -> Recorder:
    if kind == "cpu":
        from attest_cli.profiling.cpu import CpuRecorder

        return CpuRecorder(float(settings["profiling.interval"]))
    try:
        import memray  # noqa: F401
    except ImportError:
        raise NotAvailableError("--profile memory needs memray, which is not installed "
                                "(it supports Linux and macOS)") from None
    from attest_cli.profiling.memory import MemoryRecorder

    try:
        return MemoryRecorder(staging, native=native)
    except OSError as exc:
        raise UsageError(f"--profile-output {staging}: cannot write there "
                         f"({exc.strerror})") from None


def _own_usage() -> dict[str, float]:
    """attest's own process: CPU seconds and peak RSS (bytes), next to each step's."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    scale = 1 if sys.platform == "darwin" else 1024  # Linux reports KiB
    return {"cpu_user_seconds": round(usage.ru_utime, 6),
            "cpu_system_seconds": round(usage.ru_stime, 6),
            "max_rss_bytes": int(usage.ru_maxrss * scale)}
