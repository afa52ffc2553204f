"""``--format json``: the answers as stable JSON (schema ``attest.analysis``, version 1)."""

from __future__ import annotations

import json

from attest_cli.reports.answers import answers
from attest_cli.reports.detect import CPU, MEMORY, RUN
from attest_cli.reports.registry import register
from attest_cli.reports.subject import Subject


def render(subject: Subject) -> str:
    return json.dumps(answers(subject).to_dict(), indent=2) + "\n"


for _kind in (CPU, MEMORY, RUN):
    register(_kind, "json", render)
