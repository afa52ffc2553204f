"""``attest analyze FILE``: detect, check the format applies, load, render.

The format is checked before the file is fully loaded, so a wrong ``--format`` fails fast
and names the formats that do apply to this kind of file.
"""

from __future__ import annotations

from pathlib import Path

from attest_cli.analysis.detect import CPU, MEMORY, detect
from attest_cli.analysis.subject import load_subject
from attest_cli.errors import InputError
from attest_cli.render.registry import for_kind

# Damage that only shows once a renderer reads the whole file, per kind: what to say.
DAMAGE: dict[str, tuple[tuple[type[Exception], ...], str]] = {
    MEMORY: ((OSError, ValueError, RuntimeError), "truncated or corrupt memray capture"),
    CPU: ((TypeError, ValueError, KeyError, IndexError, AttributeError),
          "malformed pyinstrument session"),
}


def default_format(output: Path | None) -> str:
    """HTML when writing ``*.html``; otherwise text for a terminal."""
    if output is not None and output.suffix.lower() in (".html", ".htm"):
        return "html"
    return "text"


def analyze(path: Path, fmt: str | None = None, output: Path | None = None) -> str:
    """Render ``path`` in ``fmt``; every unusable file is an InputError naming it (exit 2)."""
    kind, raw = detect(path)
    render = for_kind(kind).renderer(fmt or default_format(output)).render
    subject = load_subject(path, kind, raw)
    if kind not in DAMAGE:
        return render(subject)
    try:
        return render(subject)
    except DAMAGE[kind][0] as exc:  # records are read (memray) or walked (pyinstrument) late
        raise InputError(f"{DAMAGE[kind][1]} ({' '.join(str(exc).split())[:200]})",
                         path=str(path)) from None
