"""The link between a profile and the run it measured: a small JSON file beside the profile.

Neither pyinstrument's session format nor memray's capture has room for our data, and both
must stay loadable by their own tools, so ``FILE.attest.json`` carries the run id, the path
of the run report (``.attest/runs/<run-id>.json``), a copy of that report (so the analysis
still works when the profile is copied elsewhere with its link), the profiler settings and
attest's own resource usage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attest_cli.atomic import write_atomic
from attest_cli.engine.run_report import RunReport
from attest_cli.errors import InputError

SCHEMA = "attest.profile-link"
SCHEMA_VERSION = 1
SUFFIX = ".attest.json"


def link_path(profile: Path) -> Path:
    return profile.with_name(profile.name + SUFFIX)


@dataclass
class ProfileLink:
    """What a profile measured: which run, with which profiler, at what cost."""

    kind: str  # cpu | memory
    tool: str  # e.g. "pyinstrument 5.1.3"
    run_id: str
    run_report: str  # absolute path of .attest/runs/<run-id>.json when written
    profiler: dict[str, Any] = field(default_factory=dict)  # interval, native, samples, ...
    overhead_seconds: float = 0.0  # starting, stopping and writing the profiler
    attest_process: dict[str, float] = field(default_factory=dict)  # cpu user/system, max rss
    run: dict[str, Any] | None = None  # the run report, as written

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "kind": self.kind,
                "tool": self.tool, "run_id": self.run_id, "run_report": self.run_report,
                "profiler": self.profiler, "overhead_seconds": round(self.overhead_seconds, 6),
                "attest_process": self.attest_process, "run": self.run}

    def report(self) -> RunReport | None:
        """The linked run: the embedded copy, else the report file if it still exists."""
        if self.run is not None:
            return RunReport.from_dict(self.run, source=self.run_report)
        if Path(self.run_report).is_file():
            return RunReport.load(self.run_report)
        return None


def write_link(profile: Path, link: ProfileLink) -> Path:
    return write_atomic(link_path(profile), json.dumps(link.to_dict(), indent=2) + "\n")


def read_link(profile: Path) -> ProfileLink | None:
    """The link beside ``profile``; ``None`` when there is none (a profile made elsewhere)."""
    path = link_path(profile)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"unreadable profile link ({exc})", path=str(path)) from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise InputError(f"not an attest profile link (expected \"schema\": \"{SCHEMA}\")",
                         path=str(path))
    try:
        return ProfileLink(kind=str(data["kind"]), tool=str(data.get("tool", "")),
                           run_id=str(data["run_id"]), run_report=str(data["run_report"]),
                           profiler=dict(data.get("profiler") or {}),
                           overhead_seconds=float(data.get("overhead_seconds") or 0.0),
                           attest_process=dict(data.get("attest_process") or {}),
                           run=data.get("run"))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"malformed profile link (missing or bad {exc})",
                         path=str(path)) from None
