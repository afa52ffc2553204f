"""``attest analyze`` formats of a run report, fed a loaded report in process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from attest_cli.analysis.subject import Subject
from attest_cli.engine.run_report import RunReport
from attest_cli.render.registry import RUN_REPORT


@pytest.fixture
def subject(run_report_data: dict[str, Any]) -> Subject:
    report = RunReport.from_dict(run_report_data, source="run.json")
    return Subject(Path("run.json"), "run", report, run=report)


def test_chrome_trace_puts_each_slot_on_its_own_track_in_microseconds(subject: Subject) -> None:
    trace = json.loads(RUN_REPORT.render("chrome-trace", subject))
    steps = {e["name"]: e for e in trace["traceEvents"] if e.get("cat") == "step"}
    assert (steps["build"]["tid"], steps["build"]["ts"], steps["build"]["dur"]) == \
        (1, 500000.0, 2000000.0)
    assert steps["lint"]["tid"] == 2
    assert steps["late"]["ph"] == "i" and steps["late"]["args"]["reason"] == "build failed"
    assert trace["otherData"] == {"run_id": "r1", "pipeline": "demo",
                                  "attest_version": trace["otherData"]["attest_version"]}


def test_text_leads_with_the_run_and_its_critical_path(subject: Subject) -> None:
    lines = RUN_REPORT.render("text", subject).splitlines()
    assert lines[0] == "run.json: run report"
    assert lines[2].startswith("run r1 of pipeline 'demo': success in 3.00s, 3 step(s)")
    assert lines[3].startswith("critical path: build = 2.00s")


def test_json_is_the_documented_analysis_schema(subject: Subject) -> None:
    doc = json.loads(RUN_REPORT.render("json", subject))
    assert (doc["schema"], doc["schema_version"], doc["kind"]) == ("attest.analysis", 1, "run")
    assert doc["run"]["critical_path"] == ["build"]


def test_html_is_one_page_that_fetches_nothing(subject: Subject) -> None:
    page = RUN_REPORT.render("html", subject)
    assert page.startswith("<!DOCTYPE html>") or page.lstrip().lower().startswith("<!doctype")
    assert "build" in page and "http://" not in page and "https://" not in page
