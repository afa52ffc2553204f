"""Keys set in ``attest.yaml`` that a higher layer overrides with a different value.

The sections of ``attest.yaml`` (``monitoring:``, ``tracing:``...) sit *below* the project
file, ``--config``/``ATTEST_CONFIG`` and the environment (SPEC §4): a project file is the
per-checkout override, the pipeline file the shared default. That order is right, but a
pasted ``tracing: {enabled: true}`` that a forgotten ``.attest/config.yaml`` turns off
looks like a bug; ``attest config validate`` and ``attest pipeline validate`` say so, one
line per key, naming both places. The user file is below ``attest.yaml`` and never
shadows it; a higher layer that sets the *same* value is not reported.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from attest_cli.config.layers import Assignment, Settings
from attest_cli.config.schema import KEYS
from attest_cli.escaping import escape_control
from attest_cli.redaction import redact_url

PIPELINE_LAYER = "pipeline"
# Layers above attest.yaml (the user file is below it).
OVERRIDING = ("project", "file", "env", "flag")


@dataclass(frozen=True)
class Shadow:
    """``key`` as ``attest.yaml`` sets it (``shadowed``) and the layer whose value wins."""

    key: str
    shadowed: Assignment
    winner: Assignment

    def message(self, display: Callable[[Path], str] = str) -> str:
        """One line: ``attest.yaml:12: tracing.enabled: true is overridden by ...``.

        ``display`` shortens a file path as the user typed it (``AppContext.display``).
        """
        where = self.shadowed.source + (f":{self.shadowed.line}" if self.shadowed.line else "")
        if self.winner.layer == "env":
            by = f"environment {self.winner.source}"
        elif self.winner.layer == "flag":
            by = "a command-line flag"
        else:
            by = display(Path(self.winner.source))
        secret = KEYS[self.key].secret
        return (f"{where}: {self.key}: {_shown(self.shadowed.value, secret)} is overridden by "
                f"{escape_control(by)} ({_shown(self.winner.value, secret)}), which takes "
                f"precedence over {self.shadowed.source}")


def shadow_warnings(settings: Settings, display: Callable[[Path], str] = str) -> list[str]:
    """The warning lines ``config validate`` and ``pipeline validate`` print."""
    return [shadow.message(display) for shadow in find_shadows(settings)]


def find_shadows(settings: Settings) -> list[Shadow]:
    """Every key whose ``attest.yaml`` value lost to a different value of a higher layer."""
    found = []
    for key, trail in settings.trail.items():
        ours = [a for a in trail if a.layer == PIPELINE_LAYER]
        if not ours:
            continue
        winner = trail[-1]
        if winner.layer in OVERRIDING and winner.value != ours[-1].value:
            found.append(Shadow(key, ours[-1], winner))
    return found


def _shown(value: object, secret: bool) -> str:
    """A value as JSON on one line (``true``, ``0.1``, ``"jaeger"``); secrets as ``<set>``."""
    if secret:
        return "<set>"
    if isinstance(value, str):
        value = redact_url(value)
    return escape_control(json.dumps(value, default=str))
