"""Everything a report leads with, computed once and shared by the text, JSON and HTML forms.

The JSON form (:meth:`Answers.to_dict`) is the documented, stable schema of
``attest analyze --format json`` (``"schema": "attest.analysis"``, version 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from attest_cli.analysis import cpu_profile, memory_capture, steps
from attest_cli.analysis.detect import CPU, MEMORY
from attest_cli.analysis.subject import Subject

SCHEMA = "attest.analysis"
SCHEMA_VERSION = 1


@dataclass
class Answers:
    kind: str
    file: str
    tool: str
    steps: steps.StepsSummary | None = None
    cpu: cpu_profile.CpuSummary | None = None
    memory: memory_capture.MemorySummary | None = None
    profiler: dict[str, Any] | None = None  # from the profile's link: cost, attest's usage

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "kind": self.kind,
                "file": self.file, "tool": self.tool,
                "run": self.steps.to_dict() if self.steps else None,
                "cpu": self.cpu.to_dict() if self.cpu else None,
                "memory": self.memory.to_dict() if self.memory else None,
                "profiler": self.profiler}


def answers(subject: Subject) -> Answers:
    out = Answers(kind=subject.kind, file=str(subject.path), tool="attest")
    if subject.run is not None:
        out.steps = steps.summarize(subject.run)
    link = subject.link
    if link is not None:
        out.tool = link.tool
        out.profiler = {"run_id": link.run_id, "run_report": link.run_report,
                        "overhead_seconds": link.overhead_seconds,
                        "attest_process": link.attest_process, "settings": link.profiler}
    if subject.kind == CPU:
        out.tool = out.tool if link else "pyinstrument"
        wall = link.profiler.get("duration_seconds") if link else None
        out.cpu = cpu_profile.summarize(subject.data, wall=wall)
    elif subject.kind == MEMORY:
        out.tool = out.tool if link else "memray"
        out.memory = memory_capture.summarize(subject.data)
    return out
