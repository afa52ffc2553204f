"""Renderers of verification results: one line per check for people, JSON for machines.

Every field of the text form is escaped (:func:`escape_control`): a file name holding a
newline and ``[OK]`` must not print a line that looks like a passing check.
"""

from __future__ import annotations

import json

from attest_cli.attestation.verify import VerificationResult
from attest_cli.escaping import escape_control as esc

TAGS = {"ok": "[OK]  ", "fail": "[FAIL]", "warn": "[WARN]", "skip": "[SKIP]"}


def render_text(results: list[VerificationResult]) -> str:
    lines = []
    for result in results:
        form = " (in-toto DSSE)" if result.form == "dsse" else ""
        lines.append(f"{esc(result.path)}{form}")
        for check in result.checks:  # names and details carry file names: one line each
            lines.append(f"  {TAGS[check.status]} {esc(check.name)}: {esc(check.detail)}")
    failed = [r for r in results if not r.ok]
    if failed:
        lines.append(f"FAILED: {len(failed)} of {len(results)} receipt(s) did not verify")
    else:
        lines.append(f"OK: {len(results)} receipt(s) verified")
    return "\n".join(lines) + "\n"


def render_json(results: list[VerificationResult]) -> str:
    doc = {"ok": all(r.ok for r in results), "receipts": [r.to_dict() for r in results]}
    return json.dumps(doc, indent=2) + "\n"
