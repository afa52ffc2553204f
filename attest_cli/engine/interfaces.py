"""The small interfaces through which the engine calls its collaborators.

The engine knows a step cache only as :class:`StepCache`, extra step environment only as
:data:`EnvProvider`, the processes it starts only as a :class:`StepRunner` and time only as
a :class:`Clock`; implementations live in ``attest_cli.cache``,
``attest_cli.tracing.tracer``, ``attest_cli.engine.step_runner`` and, for tests,
``attest_cli.engine.testing`` (so scheduling is testable without processes or sleeps).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from attest_cli.record import FrozenRecord, Record

if TYPE_CHECKING:
    from attest_cli.engine.process import ProcessOutcome
    from attest_cli.engine.run_report import StepResult
    from attest_cli.pipeline.model import Pipeline, Step


class StepContext(Record):
    """What a collaborator may know about a step about to run."""

    run_id: str
    pipeline: Pipeline
    step: Step
    env: Mapping[str, str]  # the full environment the step process receives
    workdir: Path
    upstream: Mapping[str, StepResult]  # results of the steps it needs
    # A hit whose restore would write more than this many bytes is not restored by
    # ``lookup``: it answers with ``pending`` instead, for the caller to run elsewhere
    # (the scheduler's event loop runs no long restore itself). None: always restore.
    restore_inline_limit: int | None

    def __init__(self, run_id: str, pipeline: Pipeline, step: Step, env: Mapping[str, str],
                 workdir: Path, upstream: Mapping[str, StepResult],
                 restore_inline_limit: int | None = None) -> None:
        self.run_id = run_id
        self.pipeline = pipeline
        self.step = step
        self.env = env
        self.workdir = workdir
        self.upstream = upstream
        self.restore_inline_limit = restore_inline_limit


class CacheDecision(Record):
    """The answer of a cache lookup.

    On a hit the cache has already restored the outputs; ``log_text`` is the captured output
    to replay and ``result`` carries the recorded exit metadata. On a miss ``state`` is
    whatever the cache needs back in :meth:`StepCache.store` (e.g. the input stat snapshot).
    """

    hit: bool
    backend: str
    key: str | None
    reason: str | None
    log_text: str
    output_digest: str | None
    outputs: list[dict[str, str]]
    inputs: list[dict[str, str]]
    components: Mapping[str, str] | None
    state: object
    # Set instead of restoring (see StepContext.restore_inline_limit): the full lookup,
    # restore included, whose decision is the real one (a hit, or a miss after all).
    pending: Callable[[], CacheDecision] | None

    # outputs and inputs default to a new list each (a step's result takes them over)
    def __init__(self, hit: bool, backend: str, key: str | None = None,
                 reason: str | None = None, log_text: str = "",
                 output_digest: str | None = None, outputs: list[dict[str, str]] | None = None,
                 inputs: list[dict[str, str]] | None = None,
                 components: Mapping[str, str] | None = None, state: object = None,
                 pending: Callable[[], CacheDecision] | None = None) -> None:
        self.hit = hit
        self.backend = backend
        self.key = key
        self.reason = reason
        self.log_text = log_text
        self.output_digest = output_digest
        self.outputs = [] if outputs is None else outputs
        self.inputs = [] if inputs is None else inputs
        self.components = components
        self.state = state
        self.pending = pending


class StoreOutcome(Record):
    """Whether a step's outputs were stored, how many bytes, and why not."""

    stored: bool
    bytes: int
    output_digest: str | None
    outputs: list[dict[str, str]]
    reason: str | None

    # outputs defaults to a new list (a step's result takes it over)
    def __init__(self, stored: bool, bytes: int = 0,
                 output_digest: str | None = None, outputs: list[dict[str, str]] | None = None,
                 reason: str | None = None) -> None:
        self.stored = stored
        self.bytes = bytes
        self.output_digest = output_digest
        self.outputs = [] if outputs is None else outputs
        self.reason = reason


class StepCache(Protocol):
    """A step cache as the scheduler sees it."""

    backend_name: str
    # A tier of the cache is across the network: a lookup, a restore and (if writable) a
    # store mostly wait on it, and the scheduler overlaps them with the commands.
    networked: bool

    def fresh(self, ctx: StepContext) -> CacheDecision | None:
        """A hit decided without a lookup (nothing the key covers changed), or None.

        Asked on the scheduler's own thread before a step is handed to a worker, so it
        must be cheap: a few ``lstat`` calls, no hashing and no network."""
        ...

    def lookup(self, ctx: StepContext) -> CacheDecision: ...

    def store(self, ctx: StepContext, decision: CacheDecision, result: StepResult,
              log_path: Path) -> StoreOutcome: ...


EnvProvider = Callable[[str], Mapping[str, str]]
"""Called with a step name just before it starts; returns extra variables (TRACEPARENT)."""


class StepRequest(FrozenRecord):
    """One step's command as the scheduler hands it to a :class:`StepRunner`."""

    step: str
    command: str  # unmasked: what the shell runs
    cwd: Path
    env: Mapping[str, str]
    log_path: Path  # the runner writes the masked, merged output here
    timeout: float | None
    on_line: Callable[[str], None]  # called with each masked output line
    mask: Callable[[str], str]
    # the step's cache key, when the cache computed one (a remote executor salts its Action
    # with it, so the server's Action Cache entry is never looser than attest's key)
    cache_key: str | None

    def __init__(self, step: str, command: str, cwd: Path, env: Mapping[str, str],
                 log_path: Path, timeout: float | None, on_line: Callable[[str], None],
                 mask: Callable[[str], str], cache_key: str | None = None) -> None:
        self.__dict__.update(step=step, command=command, cwd=cwd, env=env, log_path=log_path,
                             timeout=timeout, on_line=on_line, mask=mask, cache_key=cache_key)


class StepRunner(Protocol):
    """Runs step commands to completion; the real one runs processes (``step_runner.py``)."""

    def run(self, request: StepRequest) -> ProcessOutcome:
        """Run one command; blocks until it has exited, timed out or been terminated."""
        ...

    def terminate_all(self) -> None:
        """Stop every command still running (called from a helper thread on interrupt)."""
        ...


class Clock(Protocol):
    """Where the scheduler reads time: ``monotonic`` for durations, ``time`` for stamps."""

    def monotonic(self) -> float: ...

    def time(self) -> float: ...
