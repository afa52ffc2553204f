"""The seam between a run and its features: :class:`RunFeature`, :class:`RunContext`.

A feature (the cache, tracing, metrics, signing, JUnit, or a third-party package's) is an
object with a ``name``, an ``order`` and ``attach(run)``; it is found through the
``attest.run_features`` entry-point group, built-ins included, and attached in ``order``
(then name). ``attach`` reads the run's settings and options through the
:class:`RunContext` and extends the run only through its methods: observe events, give
steps extra environment, give the scheduler its cache, contribute fields to the report,
fail the run with a reason, and clean up at the end. A feature never sees the service's
internals nor a mutable run report, and never decides the run's status itself (it may only
call :meth:`RunContext.fail`); the service decides it once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from attest_cli.record import Record

if TYPE_CHECKING:
    from attest_cli.config.layers import Settings
    from attest_cli.context import AppContext
    from attest_cli.engine.events import Event, Observer
    from attest_cli.engine.interfaces import EnvProvider, StepCache, StepRunner
    from attest_cli.engine.masking import SecretMasker
    from attest_cli.engine.run_report import RunReport
    from attest_cli.pipeline.model import Pipeline

ENTRY_POINT_GROUP = "attest.run_features"
THIRD_PARTY_ORDER = 1000  # a feature that declares no ``order`` attaches after the built-ins
# The report fields a feature may fill in (each belongs to one feature).
FEATURE_FIELDS = frozenset({"cache", "receipt", "trace_id"})


class RunOptions(Record):
    """Every option of ``attest run`` (SPEC §2); features read the ones they own."""

    pipeline: str | None
    parallel: int | None
    steps: list[str]
    dry_run: bool
    no_cache: bool
    keep_going: bool
    timeout: float | None
    sign: bool
    verify: bool
    policy: str | None
    output: str | None
    report: str | None
    trace: bool
    profile: str | None
    profile_output: str | None
    profile_steps: bool  # --profile memory --profile-steps: memray in Python steps
    metrics_file: str | None
    expires_in: str | None
    junit: str | None
    remote_exec: bool  # --remote-exec: execution.backend reapi for this run

    def __init__(self, pipeline: str | None = None, parallel: int | None = None,
                 steps: list[str] | None = None, dry_run: bool = False,
                 no_cache: bool = False, keep_going: bool = False,
                 timeout: float | None = None, sign: bool = False, verify: bool = False,
                 policy: str | None = None, output: str | None = None,
                 report: str | None = None, trace: bool = False, profile: str | None = None,
                 profile_output: str | None = None, profile_steps: bool = False,
                 metrics_file: str | None = None, expires_in: str | None = None,
                 junit: str | None = None, remote_exec: bool = False) -> None:
        self.pipeline = pipeline
        self.parallel = parallel
        self.steps = [] if steps is None else steps
        self.dry_run = dry_run
        self.no_cache = no_cache
        self.keep_going = keep_going
        self.timeout = timeout
        self.sign = sign
        self.verify = verify
        self.policy = policy
        self.output = output
        self.report = report
        self.trace = trace
        self.profile = profile
        self.profile_output = profile_output
        self.profile_steps = profile_steps
        self.metrics_file = metrics_file
        self.expires_in = expires_in
        self.junit = junit
        self.remote_exec = remote_exec

@runtime_checkable
class RunFeature(Protocol):
    """Something that can take part in a run; it does nothing unless configured."""

    name: str
    order: int  # attach order: lower first; built-ins use 100..500

    def attach(self, run: RunContext) -> None: ...


class Feature(NamedTuple):  # not a frozen dataclass: ~0.8 ms less start-up
    """A :class:`RunFeature` made of an ``attach`` function (how attest's own are built:
    ``FEATURE = Feature("cache", 100, attach)`` in the feature's module)."""

    name: str
    order: int
    attach: Callable[[RunContext], None]


FinishHook = Callable[["RunReport"], None]
TraceIds = Callable[[], "tuple[str, str] | None"]


class RunContext:
    """What a feature may read and extend for one run (built by the run service)."""

    def __init__(self, *, ctx: AppContext, settings: Settings, options: RunOptions,
                 pipeline: Pipeline, masker: SecretMasker, run_id: str,
                 publish: Callable[[Event], None], snapshot: Callable[[], RunReport]) -> None:
        self._ctx = ctx
        self._settings = settings
        self._options = options
        self._pipeline = pipeline
        self._masker = masker
        self._run_id = run_id
        self._publish = publish
        self._snapshot = snapshot
        self.observers: list[Observer] = []
        self.env_providers: list[EnvProvider] = []
        self.cache: StepCache | None = None
        self.step_runner: StepRunner | None = None
        self.finish_hooks: list[FinishHook] = []
        self.closers: list[Callable[[], None]] = []
        self.interrupt_hooks: list[Callable[[], None]] = []
        self.failures: list[str] = []
        self.fields: dict[str, Any] = {}
        self.trace_ids: TraceIds | None = None

    # -- read access -------------------------------------------------------------------
    @property
    def ctx(self) -> AppContext:
        return self._ctx

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def options(self) -> RunOptions:
        return self._options

    @property
    def pipeline(self) -> Pipeline:
        return self._pipeline

    @property
    def masker(self) -> SecretMasker:
        return self._masker

    @property
    def run_id(self) -> str:
        return self._run_id

    @property
    def report(self) -> RunReport:
        """A frozen snapshot of the run's report as it is now (identity, timing, and the
        steps and status once known)."""
        return self._snapshot()

    # -- extending the run -------------------------------------------------------------
    def subscribe(self, observer: Observer) -> None:
        """Receive every run event (frozen data), in order; an observer that raises is
        reported once and skipped, it never breaks the run."""
        self.observers.append(observer)

    def publish(self, event: Event) -> None:
        """Publish an event of the feature's own (e.g. a receipt was signed)."""
        self._publish(event)

    def add_env_provider(self, provider: EnvProvider) -> None:
        """Extra environment for each step, asked just before it starts (TRACEPARENT)."""
        self.env_providers.append(provider)

    def set_cache(self, cache: StepCache) -> None:
        """The step cache the scheduler looks up and stores through (one per run)."""
        if self.cache is not None:
            raise RuntimeError("a run has one step cache; it is already set")
        self.cache = cache

    def set_step_runner(self, runner: StepRunner) -> None:
        """What runs the step commands instead of local processes (one per run), e.g. a
        remote executor; it decides per step and may hand a step back to a local one."""
        if self.step_runner is not None:
            raise RuntimeError("a run has one step runner; it is already set")
        self.step_runner = runner

    def before_finish(self, hook: FinishHook) -> None:
        """Called once the steps are done, before RunFinished, with a frozen snapshot of
        the report (its status as decided so far); the hook may :meth:`fail` the run or
        :meth:`record` a field."""
        self.finish_hooks.append(hook)

    def on_close(self, closer: Callable[[], None]) -> None:
        """Called at the very end however the run ends (in reverse order of registration);
        a closer that raises is a warning."""
        self.closers.append(closer)

    def on_interrupt(self, hook: Callable[[], None]) -> None:
        """Called from the signal handler when SIGINT/SIGTERM stops the run (so: quick,
        no locks, no I/O), e.g. to make a remote call in flight give up."""
        self.interrupt_hooks.append(hook)

    def fail(self, reason: str) -> None:
        """The run fails (unless it was interrupted) for this reason, recorded in the
        report's ``failures``; the service decides the status, once."""
        self.failures.append(reason)

    def record(self, name: str, value: Any) -> None:
        """Fill in one of the report fields a feature owns (``cache``, ``receipt``,
        ``trace_id``)."""
        if name not in FEATURE_FIELDS:
            raise ValueError(f"a feature cannot set the report field {name!r}")
        self.fields[name] = value

    def set_log_trace(self, trace_ids: TraceIds) -> None:
        """Log lines of this run carry the ``(trace_id, span_id)`` this returns."""
        self.trace_ids = trace_ids

    # -- for the service: undo what a feature that failed to attach had registered -----
    _LISTS = ("observers", "env_providers", "finish_hooks", "closers", "interrupt_hooks",
              "failures")

    def mark(self) -> tuple[dict[str, int], dict[str, Any], Any, Any, Any]:
        return ({n: len(getattr(self, n)) for n in self._LISTS}, dict(self.fields), self.cache,
                self.trace_ids, self.step_runner)

    def roll_back(self, mark: tuple[dict[str, int], dict[str, Any], Any, Any, Any]) -> None:
        sizes, fields, self.cache, self.trace_ids, self.step_runner = mark
        for name, size in sizes.items():
            del getattr(self, name)[size:]
        self.fields = fields
