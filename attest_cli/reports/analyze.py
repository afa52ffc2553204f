"""``attest analyze FILE``: detect, check the format applies, load, render.

The format is checked before the file is fully loaded, so a wrong ``--format`` fails fast
and names the formats that do apply to this kind of file.
"""

from __future__ import annotations

from pathlib import Path

from attest_cli.errors import InputError
from attest_cli.reports.detect import KINDS, MEMORY, detect
from attest_cli.reports.registry import renderer
from attest_cli.reports.subject import load_subject


def default_format(output: Path | None) -> str:
    """HTML when writing ``*.html``; otherwise text for a terminal."""
    if output is not None and output.suffix.lower() in (".html", ".htm"):
        return "html"
    return "text"


def analyze(path: Path, fmt: str | None = None, output: Path | None = None) -> str:
    """Render ``path`` in ``fmt``; every unusable file is an InputError naming it (exit 2)."""
    kind, raw = detect(path)
    render = renderer(kind, fmt or default_format(output), KINDS[kind])
    subject = load_subject(path, kind, raw)
    if kind != MEMORY:
        return render(subject)
    try:
        return render(subject)
    except (OSError, ValueError, RuntimeError) as exc:  # memray reads records lazily
        raise InputError(f"truncated or corrupt memray capture ({' '.join(str(exc).split())})",
                         path=str(path)) from None
