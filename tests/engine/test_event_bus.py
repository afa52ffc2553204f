"""The event bus: delivery in order, observers that declare their kinds, broken observers."""

from __future__ import annotations

import pytest

from attest_cli.engine.events import (
    CacheChecked,
    Event,
    EventBus,
    StepOutput,
    StepStarted,
)

pytestmark = pytest.mark.unit


class Recorder:
    def __init__(self, kinds: tuple[type[Event], ...] | None = None) -> None:
        if kinds is not None:
            self.observed_events = kinds
        self.seen: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.seen.append(event)


def events() -> list[Event]:
    return [StepStarted(run_id="r", step="a", command="true", slot=0),
            StepOutput(step="a", line="hi"),
            CacheChecked(step="a", backend="local", hit=True, key="k", reason=None,
                         duration=0.0)]


def test_an_observer_that_declares_its_kinds_gets_only_those_in_order() -> None:
    bus = EventBus()
    everything, outputs = Recorder(), Recorder((StepOutput, CacheChecked))
    bus.subscribe(everything)
    bus.subscribe(outputs)
    sent = events()
    for e in sent:
        bus.publish(e)
    assert everything.seen == sent
    assert outputs.seen == sent[1:]


def test_a_base_class_in_the_declaration_covers_its_subclasses() -> None:
    bus = EventBus()
    anything = Recorder((Event,))
    bus.subscribe(anything)
    for e in events():
        bus.publish(e)
    assert len(anything.seen) == 3


def test_an_observer_subscribed_after_a_publish_is_routed_too() -> None:
    bus = EventBus()
    first = Recorder((StepOutput,))
    bus.subscribe(first)
    bus.publish(StepOutput(step="a", line="1"))
    late = Recorder((StepOutput,))
    bus.subscribe(late)
    bus.publish(StepOutput(step="a", line="2"))
    assert [e.line for e in first.seen] == ["1", "2"]  # type: ignore[attr-defined]
    assert [e.line for e in late.seen] == ["2"]  # type: ignore[attr-defined]


def test_a_broken_observer_is_skipped_and_the_others_still_see_everything() -> None:
    bus = EventBus()

    def broken(event: Event) -> None:
        raise RuntimeError("boom")

    after = Recorder()
    bus.subscribe(broken)
    bus.subscribe(after)
    for e in events():
        bus.publish(e)
    assert len(after.seen) == 3


def test_an_event_is_a_read_only_message_compared_by_identity() -> None:
    """What the events kept of their frozen, eq=False dataclasses (they are records now)."""
    import pickle

    from attest_cli.record import FrozenError, fields_of

    line = StepOutput(step="a", line="hi", at=1.0)
    twin = StepOutput("a", "hi", at=1.0)
    assert line != twin and line == line and hash(line) != hash(twin)
    assert repr(line) == "StepOutput(at=1.0, step='a', line='hi')"
    assert fields_of(StepStarted) == ("at", "run_id", "step", "command", "slot", "lookup")
    with pytest.raises(FrozenError):
        line.line = "changed"
    with pytest.raises(TypeError):
        StepOutput("a", "hi", 1.0)  # type: ignore[call-arg]  # `at` is keyword-only
    assert StepOutput(step="a", line="hi").at > 0  # "now" unless given
    assert pickle.loads(pickle.dumps(line)).line == "hi"


def test_a_features_own_event_written_as_a_frozen_dataclass_still_works() -> None:
    # attest's events were dataclasses, and a run feature may publish one of its own
    # written the same way (docs/architecture.md): its generated __init__ knows only its
    # own fields, and `at` is then the time it was first read, by an observer
    import dataclasses
    import time

    @dataclasses.dataclass(frozen=True, eq=False)
    class Uploaded(Event):
        url: str

    seen: list[tuple[str, float]] = []
    bus = EventBus()
    bus.subscribe(lambda e: seen.append((e.url, e.at)) if isinstance(e, Uploaded) else None)
    before = time.time()
    event = Uploaded(url="https://example.invalid/x")
    bus.publish(event)
    assert seen and seen[0][0] == "https://example.invalid/x"
    assert before <= seen[0][1] <= time.time()
    assert event.at == seen[0][1]  # read once, then kept
    with pytest.raises(AttributeError):
        event.url = "y"  # type: ignore[misc]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        event.nope  # type: ignore[attr-defined]  # noqa: B018
    assert event != Uploaded(url="https://example.invalid/x")  # a message: by identity
