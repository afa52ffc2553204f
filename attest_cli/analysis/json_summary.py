"""``--format json``: the answers as stable JSON (schema ``attest.analysis``, version 1)."""

from __future__ import annotations

import json

from attest_cli.analysis.answers import answers
from attest_cli.analysis.detect import CPU, MEMORY, RUN
from attest_cli.analysis.registry import register
from attest_cli.analysis.subject import Subject


def render(subject: Subject) -> str:
    return json.dumps(answers(subject).to_dict(), indent=2) + "\n"


for _kind in (CPU, MEMORY, RUN):
    register(_kind, "json", render)
