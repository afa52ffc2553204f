"""``--format speedscope`` (CPU): pyinstrument's speedscope export, for speedscope.app.

pyinstrument writes ``null`` for optional fields it has no value for (``activeProfileIndex``,
a frame's ``file`` and ``line``), which speedscope's file-format schema forbids: those keys
are dropped, so the file validates against ``file-format-schema.json``.
"""

from __future__ import annotations

import json
from typing import Any

from attest_cli.analysis.subject import Subject

OPTIONAL_FRAME_KEYS = ("file", "line", "col")


def conform(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` without the ``null`` optional values the schema rejects."""
    if doc.get("activeProfileIndex") is None:
        doc.pop("activeProfileIndex", None)
    for frame in doc.get("shared", {}).get("frames", []):
        for key in OPTIONAL_FRAME_KEYS:
            if key in frame and frame[key] is None:
                del frame[key]
    return doc


def render(subject: Subject) -> str:
    from pyinstrument.renderers.speedscope import SpeedscopeRenderer

    doc = json.loads(SpeedscopeRenderer().render(subject.data))
    return json.dumps(conform(doc), separators=(",", ":")) + "\n"
