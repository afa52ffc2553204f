"""Terminal-safe text: names escaped, step output stripped of non-colour escape sequences.

Two different jobs, one module, because both defend the same thing: what a person reads on
a terminal must be what attest means, not what a file name or a step chose to paint there.

* :func:`escape_control` is for names attest prints (file names, step names, paths, receipt
  fields): a control character becomes a visible escape (``\\n``, ``\\x1b``), so a file
  named ``"x\\n[OK] forged"`` stays on its own line as ``x\\n[OK] forged``.
* :func:`filter_output` is for a step's own output forwarded to a terminal: SGR colour
  sequences (``ESC[...m``) may stay, everything else that moves the cursor, erases, sets a
  title (OSC), or is another escape or control character is removed. Log files on disk keep
  the raw bytes; ``attest run --raw-output`` forwards them untouched.

Renderers for JSON need neither: the encoder escapes control characters itself.
"""

from __future__ import annotations

import re

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\x1b"}
# C0, DEL, C1; line/paragraph separators; bidirectional overrides and isolates (they reorder
# what is shown: "Trojan Source"); the BOM/zero-width no-break space.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")


def _visible(match: re.Match[str]) -> str:
    ch = match.group(0)
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_control(text: object) -> str:
    """``text`` with every control character shown as an escape; printable text unchanged."""
    s = str(text)
    if s.isprintable():  # no control character at all (the usual name): no regex
        return s
    return _CONTROL.sub(_visible, s) if _CONTROL.search(s) else s


# One escape sequence of any kind (ECMA-48): CSI (7- and 8-bit), the string sequences OSC,
# DCS, SOS, PM, APC up to their terminator (BEL or ST) or the end of the line, and the
# two-or-more byte ESC sequences (charset selection, save/restore cursor, reset, ...); or
# else one other control character (every C0 and C1 but TAB).
_UNSAFE = re.compile(
    r"(?:\x1b\[|\x9b)(?P<params>[\x30-\x3f]*)(?P<inter>[\x20-\x2f]*)(?P<final>[\x40-\x7e])"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]).*?(?:\x07|\x1b\\|\x9c|$)"
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]"
    r"|[\x00-\x08\x0a-\x1f\x7f-\x9f]",
    re.DOTALL,
)
_SGR_PARAMS = re.compile(r"[0-9;:]*")


def filter_output(line: str, *, colour: bool = True) -> str:
    """One line of step output made safe for a terminal.

    Text before a carriage return is dropped (a terminal would have overwritten it), SGR
    colour sequences are kept when ``colour`` is on, and every other escape sequence and
    control character except TAB is removed.
    """
    if "\r" in line:
        line = line.rsplit("\r", 1)[-1]

    def keep(match: re.Match[str]) -> str:
        if (colour and match.group("final") == "m" and not match.group("inter")
                and _SGR_PARAMS.fullmatch(match.group("params"))):
            return match.group(0)
        return ""

    return _UNSAFE.sub(keep, line) if _UNSAFE.search(line) else line
