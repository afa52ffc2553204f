"""Fixtures for in-process engine tests: a scheduler on fakes, no processes or sleeps."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.harness import MakeScheduler, scheduler_factory


@pytest.fixture
def make_scheduler(tmp_path: Path) -> MakeScheduler:
    """Build a scheduler harness: ``make_scheduler(steps, scripts, parallel=2, ...)``."""
    return scheduler_factory(tmp_path)
