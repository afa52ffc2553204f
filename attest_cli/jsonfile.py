"""Reading a JSON document that a user handed to attest (run report, benchmark result,
receipt), within a memory budget.

Every failure becomes one :class:`InputError` line naming the file and what was expected.
The file must be a regular file of at most :data:`MAX_BYTES`; before parsing, the values it
can hold are counted (commas, brackets and braces outside strings bound them from above) and
more than :data:`MAX_NODES` is refused, so ``[[],[],...]`` cannot turn 50 MB into gigabytes
of Python objects. Duplicate keys in an object are refused: JSON parsers disagree on which
one wins, and a signed document must mean one thing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from attest_cli.errors import InputError
from attest_cli.regularfile import read_regular
from attest_cli.yamlfile import MAX_BYTES, MAX_DEPTH, MAX_NODES, load_yaml

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def parse_json(raw: bytes, *, name: str, expected: str) -> Any:
    """Parse ``raw`` within :data:`MAX_NODES` values and :data:`MAX_DEPTH` levels, refusing
    duplicate keys; any problem is one located :class:`InputError`."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})", path=name) from None
    structure = _STRING.sub(b"", raw)
    values = structure.count(b",") + structure.count(b"[") + structure.count(b"{") + 1
    if values > MAX_NODES:
        raise InputError(f"document has more than {MAX_NODES} values", path=name)
    _check_depth(structure, name)
    del structure
    try:
        return json.loads(text, object_pairs_hook=_unique_pairs)
    except _DuplicateKey as exc:
        _locate_duplicate(text, name)  # raises with line and key path when it can
        raise InputError(f"duplicate key '{exc.key}'", path=name, key=exc.key) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON, expected {expected}: {exc.msg}", path=name,
                         line=exc.lineno) from None
    except RecursionError:
        raise InputError(f"JSON nested more than {MAX_DEPTH} levels deep", path=name) from None


def _check_depth(structure: bytes, name: str) -> None:
    """Refuse nesting past :data:`MAX_DEPTH`: strip innermost bracket pairs once per level
    (C-speed ``replace``; a real document is a handful of levels deep)."""
    brackets = re.sub(rb"[^\[\]{}]+", b"", structure)
    for _level in range(MAX_DEPTH):
        if not brackets:
            return
        shorter = brackets.replace(b"[]", b"").replace(b"{}", b"")
        if shorter == brackets:
            return  # unbalanced: the parser names the error
        brackets = shorter
    if brackets:
        raise InputError(f"JSON nested more than {MAX_DEPTH} levels deep", path=name)


def _locate_duplicate(text: str, name: str) -> None:
    """Raise the duplicate's ``file:line: dotted.key`` error: JSON is YAML flow syntax, and
    the YAML builder tracks positions (only on this error path; the text is in budget)."""
    try:
        load_yaml(name, text=text)
    except InputError as exc:
        if "duplicate key" in exc.message:
            raise exc from None


def load_json(path: str | Path, *, expected: str, max_bytes: int = MAX_BYTES) -> Any:
    """Parse ``path`` (a regular file); ``expected`` names the kind of file in errors."""
    raw = read_regular(path, max_bytes=max_bytes, expected=expected)
    return parse_json(raw, name=str(path), expected=expected)
