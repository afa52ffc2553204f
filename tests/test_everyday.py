"""Everyday use: positional steps, consistent short flags, usage errors, completions, the man
page, and the critical path after a cached run."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.support import attest, write_pipeline


def test_pipeline_show_after_cached_rerun_weighs_by_last_executed_durations(
        project: Path) -> None:
    write_pipeline(project, """
        name: demo
        steps:
          slow: {run: 'sleep 0.4'}
          fast1: {run: 'true'}
          fast2: {run: 'true', needs: [fast1]}
          fast3: {run: 'true', needs: [fast2]}
    """)
    assert attest("run", cwd=project).returncode == 0
    second = attest("run", cwd=project)
    assert second.returncode == 0
    runs = sorted((project / ".attest" / "runs").glob("*.json"))
    assert len(runs) == 2
    assert {s["status"] for s in json.loads(runs[-1].read_text())["steps"]} == {"cached"}

    shown = attest("pipeline", "show", "-f", "json", cwd=project)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    # by step count the 3-step chain would win; by the first run's durations `slow` does
    assert data["weight_unit"] == "seconds"
    assert data["critical_path"] == ["slow"]
    assert 0.35 < data["critical_path_weight"] < 30

    text = attest("pipeline", "show", cwd=project).stdout
    last = text.strip().splitlines()[-1]
    assert last.startswith("critical path (*): slow  (")
    assert re.fullmatch(r"critical path \(\*\): slow  \(\d+ms\)", last) or \
        re.fullmatch(r"critical path \(\*\): slow  \(\d+\.\ds\)", last), last


def test_durations_are_formatted_for_humans() -> None:
    from attest_cli.pipeline.graph import human_duration

    assert human_duration(0.35) == "350ms"
    assert human_duration(0.0004) == "0ms"
    assert human_duration(1.234) == "1.2s"
    assert human_duration(59.94) == "59.9s"
    assert human_duration(123.4) == "2m03s"
    assert human_duration(3725) == "1h02m05s"
