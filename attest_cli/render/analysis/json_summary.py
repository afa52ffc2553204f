"""``--format json``: the answers as stable JSON (schema ``attest.analysis``, version 1)."""

from __future__ import annotations

import json

from attest_cli.analysis.answers import answers
from attest_cli.analysis.subject import Subject


def render(subject: Subject) -> str:
    return json.dumps(answers(subject).to_dict(), indent=2) + "\n"

