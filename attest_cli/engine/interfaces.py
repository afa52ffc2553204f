"""The small interfaces through which the engine calls its collaborators.

The engine knows a step cache only as :class:`StepCache` and extra step environment only
as :data:`EnvProvider`; implementations live in ``attest_cli.cache`` and
``attest_cli.tracing.tracer``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from attest_cli.engine.run_report import StepResult
    from attest_cli.pipeline.model import Pipeline, Step


@dataclass
class StepContext:
    """What a collaborator may know about a step about to run."""

    run_id: str
    pipeline: Pipeline
    step: Step
    env: Mapping[str, str]  # the full environment the step process receives
    workdir: Path
    upstream: Mapping[str, StepResult]  # results of the steps it needs


@dataclass
class CacheDecision:
    """The answer of a cache lookup.

    On a hit the cache has already restored the outputs; ``log_text`` is the captured output
    to replay and ``result`` carries the recorded exit metadata. On a miss ``state`` is
    whatever the cache needs back in :meth:`StepCache.store` (e.g. the input stat snapshot).
    """

    hit: bool
    backend: str
    key: str | None = None
    reason: str | None = None
    log_text: str = ""
    output_digest: str | None = None
    outputs: list[dict[str, str]] = field(default_factory=list)
    inputs: list[dict[str, str]] = field(default_factory=list)
    components: dict[str, str] | None = None
    state: object = None


@dataclass
class StoreOutcome:
    stored: bool
    bytes: int = 0
    output_digest: str | None = None
    outputs: list[dict[str, str]] = field(default_factory=list)
    reason: str | None = None


class StepCache(Protocol):
    """A step cache as the scheduler sees it."""

    backend_name: str

    def lookup(self, ctx: StepContext) -> CacheDecision: ...

    def store(self, ctx: StepContext, decision: CacheDecision, result: StepResult,
              log_path: Path) -> StoreOutcome: ...


EnvProvider = Callable[[str], Mapping[str, str]]
"""Called with a step name just before it starts; returns extra variables (TRACEPARENT)."""
