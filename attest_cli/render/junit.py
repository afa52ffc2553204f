"""JUnit XML of a run: the test-report format every CI system ingests.

One ``<testsuite>`` per run (name = pipeline) and one ``<testcase>`` per step (classname =
pipeline, name = step, time = wall seconds). A failed step carries ``<failure>`` with the
tail of its log (type ``timeout`` when it timed out), a skipped step ``<skipped/>``, and a
cached step passes with a ``<system-out>`` note saying it was restored. The shape follows
the JUnit schema of Jenkins' xUnit plugin (``tests/data/junit-10.xsd``), which the common
consumers (Jenkins, GitLab, GitHub test reporters, junitparser) read.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from attest_cli.engine.run_report import RunReport, StepResult

TAIL_LINES = 50  # lines of a failed step's log in its <failure>
TAIL_CHARS = 16 * 1024  # ... and at most this many characters of them
# XML 1.0 forbids most control characters (ANSI colour escapes, bells): they would make the
# whole file unreadable, so each becomes U+FFFD
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def log_tail(result: StepResult, lines: int = TAIL_LINES, chars: int = TAIL_CHARS) -> str:
    """The last ``lines`` lines of the step's log (bounded in characters too)."""
    if not result.log_file:
        return ""
    try:
        with open(result.log_file, encoding="utf-8", errors="replace") as fh:
            tail = "".join(deque(fh, maxlen=lines))
    except OSError:
        return ""
    return tail[-chars:]


def _seconds(value: float) -> str:
    return f"{max(0.0, value):.3f}"


def _case(suite: ET.Element, report: RunReport, step: StepResult,
          mask: Callable[[str], str]) -> None:
    case = ET.SubElement(suite, "testcase", classname=xml_text(report.pipeline),
                         name=xml_text(step.name), time=_seconds(step.wall_seconds))
    if step.status == "failure":
        kind = "timeout" if step.timed_out else "failure"
        failure = ET.SubElement(case, "failure", type=kind,
                                message=xml_text(mask(step.reason or kind)))
        failure.text = xml_text(mask(log_tail(step)))
    elif step.status == "skipped":
        ET.SubElement(case, "skipped", message=xml_text(mask(step.reason or "skipped")))
    elif step.status == "cached":
        out = ET.SubElement(case, "system-out")
        key = f", key {step.cache_key}" if step.cache_key else ""
        out.text = f"cached: restored from the {step.cache_backend or 'local'} cache{key}"


def render(report: RunReport, mask: Callable[[str], str] = str) -> bytes:
    """The JUnit XML document of ``report`` (UTF-8, with an XML declaration)."""
    steps = report.steps
    failures = sum(1 for s in steps if s.status == "failure")
    skipped = sum(1 for s in steps if s.status == "skipped")
    total = _seconds(report.duration_seconds)
    name = xml_text(report.pipeline)
    root = ET.Element("testsuites", name=name, tests=str(len(steps)),
                      failures=str(failures), errors="0", time=total)
    started = datetime.fromtimestamp(report.started_at, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    suite = ET.SubElement(root, "testsuite", name=name, tests=str(len(steps)),
                          failures=str(failures), errors="0", skipped=str(skipped),
                          time=total, timestamp=started,
                          hostname=xml_text(report.hostname or socket.gethostname()),
                          id=report.run_id, file=xml_text(report.pipeline_file))
    props = ET.SubElement(suite, "properties")
    for key, value in (("attest.run_id", report.run_id), ("attest.status", report.status),
                        ("attest.version", report.attest_version),
                        ("attest.cached_steps",
                         str(sum(1 for s in steps if s.status == "cached")))):
        ET.SubElement(props, "property", name=key, value=xml_text(value))
    for step in steps:
        _case(suite, report, step, mask)
    ET.indent(root)
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body + b"\n"


def write(report: RunReport, path: Path, mask: Callable[[str], str] = str) -> Path:
    """Write atomically (a reader never sees half a file, even if attest is killed)."""
    from attest_cli.atomic import write_atomic

    return write_atomic(path, render(report, mask))
