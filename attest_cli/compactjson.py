"""Compact JSON for attest's own files (reports, manifests, indexes): orjson, with a way out.

orjson writes a 4 MB report in a seventh of the standard library's time. It refuses lone
surrogates, though, and those are what a file name that is not UTF-8 becomes in Python
(``os.fsdecode``). Such a name must not fail a run (it did, once). Those documents therefore
go through the standard library, which escapes the surrogates (``"\\udcff"``), as attest
wrote them before orjson. :func:`loads` reads both forms.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import orjson

from attest_cli.record import Record, as_dict


def dumps(obj: Any, *, sort_keys: bool = False, newline: bool = False) -> bytes:
    """``obj`` as compact JSON bytes (ASCII-escaped only when orjson cannot take it)."""
    option = (orjson.OPT_SORT_KEYS if sort_keys else 0) | \
        (orjson.OPT_APPEND_NEWLINE if newline else 0)
    try:
        return orjson.dumps(obj, default=fields_dict, option=option)
    except orjson.JSONEncodeError:
        text = json.dumps(obj, separators=(",", ":"), sort_keys=sort_keys, default=fields_dict)
        return (text + "\n" if newline else text).encode("ascii")


def fields_dict(obj: Any) -> dict[str, Any]:
    """A record's (or, for the standard library, a dataclass instance's) fields, in order:
    what orjson writes for a dataclass."""
    if isinstance(obj, Record):
        return as_dict(obj)
    dataclasses = sys.modules.get("dataclasses")  # an instance of one means it is loaded
    if dataclasses is not None and dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def loads(data: bytes | str) -> Any:
    """Parse JSON; raises ValueError (or RecursionError) as ``json.loads`` does."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)  # escaped surrogates, NaN, deep nesting: the slow path
