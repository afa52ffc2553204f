"""The plain and GitHub views fed run events directly: when a step's start line is shown,
and that a replay's output never is (in-process, no processes)."""

from __future__ import annotations

import io

import pytest

from attest_cli.engine.events import CacheChecked, Event, StepFinished, StepOutput, StepStarted
from attest_cli.engine.run_report import StepResult
from attest_cli.ui.progress import GitHubActionsView, PlainView

pytestmark = pytest.mark.unit


def started(step: str, lookup: bool) -> StepStarted:
    return StepStarted(run_id="r", step=step, command=f"make {step}", slot=0, lookup=lookup)


def checked(step: str, hit: bool) -> CacheChecked:
    return CacheChecked(step=step, backend="redis" if hit else "local", hit=hit, key="k",
                        reason=None, duration=0.0)


def finished(step: str, status: str, backend: str | None = None) -> StepFinished:
    return StepFinished(run_id="r", result=StepResult(
        name=step, command=f"make {step}", status=status, exit_code=0, wall_seconds=0.5,
        cache_hit=status == "cached", cache_backend=backend))


def plain(events: list[Event]) -> list[str]:
    out = io.StringIO()
    view = PlainView(out)
    for event in events:
        view(event)
    return out.getvalue().splitlines()


def test_a_replay_is_one_line_even_when_steps_interleave() -> None:
    lines = plain([
        started("a", True), started("b", True), checked("a", True), checked("b", False),
        StepOutput(step="a", line="replayed a"), StepOutput(step="b", line="live b"),
        finished("a", "cached", "redis"), finished("b", "success"),
    ])
    assert lines == ["▶ b: make b", "[b] live b", "◆ a cached (redis)", "✓ b (500ms)"]


def test_a_step_without_a_lookup_is_announced_at_once() -> None:
    assert plain([started("c", False)]) == ["▶ c: make c"]


def test_a_lookup_that_never_reported_still_announces_the_step_before_its_output() -> None:
    lines = plain([started("d", True), StepOutput(step="d", line="out"), finished("d", "success")])
    assert lines == ["▶ d: make d", "[d] out", "✓ d (500ms)"]
    quiet_start = plain([started("e", True), finished("e", "success")])
    assert quiet_start == ["▶ e: make e", "✓ e (500ms)"]


def test_the_github_view_shows_a_replay_as_one_line_without_a_group() -> None:
    out = io.StringIO()
    view = GitHubActionsView(out, None)
    for event in [started("a", True), checked("a", True), StepOutput(step="a", line="old"),
                  finished("a", "cached", "local")]:
        view(event)
    assert out.getvalue() == "◆ a cached (local)\n"


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def replay(view: PlainView, step: str) -> None:
    for event in (started(step, True), checked(step, True), finished(step, "cached", "local")):
        view(event)


def test_a_row_of_replays_is_written_together_and_within_the_flush_interval() -> None:
    import time

    from attest_cli.engine.events import RunFinished
    from attest_cli.engine.run_report import RunReport
    from attest_cli.ui import progress

    out = CountingStream()
    view = PlainView(out)
    for i in range(200):
        replay(view, f"s{i}")
    deadline = time.monotonic() + 10 * progress.FLUSH_SECONDS + 1
    while out.getvalue().count("\n") < 200 and time.monotonic() < deadline:
        time.sleep(progress.FLUSH_SECONDS / 5)  # nothing else happens: the timer writes
    assert out.getvalue().splitlines() == [f"◆ s{i} cached (local)" for i in range(200)]
    assert out.writes < 20  # not one write per line
    replay(view, "last")
    view(RunFinished(report=RunReport(run_id="r", pipeline="p",
                                                  pipeline_file="attest.yaml", started_at=0)))
    lines = out.getvalue().splitlines()
    assert lines[-2] == "◆ last cached (local)"  # the summary brings the held line with it
    assert lines[-1].startswith("p: ")


def test_a_replay_while_another_step_runs_is_written_at_once() -> None:
    out = CountingStream()
    view = PlainView(out)
    view(started("build", False))
    replay(view, "a")
    assert out.getvalue().splitlines() == ["▶ build: make build", "◆ a cached (local)"]


def test_close_writes_what_is_held_when_no_summary_comes() -> None:
    out = CountingStream()
    view = PlainView(out)
    replay(view, "a")
    view.close()  # a run that ended in an error: no RunFinished
    assert out.getvalue() == "◆ a cached (local)\n"
