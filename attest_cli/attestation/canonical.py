"""The canonical serializations that signatures and the pipeline hash cover.

A receipt may be stored as YAML or JSON; both must verify identically, so the signature
never covers the file's bytes but a canonical form of its data. Two forms exist:

- :func:`jcs_bytes`, the JSON Canonicalization Scheme (RFC 8785) as computed by the
  maintained ``rfc8785`` package: what receipts of schema v2 are signed over, so anyone
  with a JCS library can verify them (JCS writes ``0.0`` as ``0`` and ``1e-07`` as ``1e-7``).
- :func:`canonical_bytes`, Python's ``json`` with sorted keys and no whitespace: what v1
  receipts were signed over (it is *not* JCS for floats) and what the pipeline hash uses,
  so that hashes recorded in existing receipts and caches stay valid.
"""

from __future__ import annotations

import json
import math
from typing import Any

from attest_cli.digest import bytes_digest


class NotCanonicalizable(ValueError):
    """The value holds something JSON cannot carry exactly (a date, NaN, a set...)."""


def _check(value: Any, where: str) -> None:
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NotCanonicalizable(f"{where}: not a finite number")
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotCanonicalizable(f"{where}: key {key!r} is not a string")
            _check(item, f"{where}.{key}" if where else key)
        return
    raise NotCanonicalizable(f"{where or 'value'}: {type(value).__name__} is not allowed "
                             "(strings, numbers, booleans, null, lists and mappings only)")


def canonical_bytes(value: Any) -> bytes:
    """The one byte string that stands for ``value`` (raises :class:`NotCanonicalizable`).

    The encoder itself refuses NaN and non-JSON types; the slower walk that names the bad
    value runs only then (it also refuses non-string keys, which ``json`` would coerce)."""
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False)
    except (TypeError, ValueError):
        _check(value, "")
        raise NotCanonicalizable("value cannot be serialized canonically") from None
    return text.encode("utf-8")


def jcs_bytes(value: Any) -> bytes:
    """RFC 8785 bytes of ``value`` (raises :class:`NotCanonicalizable`, naming the value)."""
    import rfc8785

    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError):
        _check(value, "")
        raise NotCanonicalizable("value cannot be serialized canonically (RFC 8785: numbers "
                                 "must be finite and integers within +/-(2**53-1))") from None


def canonical_digest(value: Any) -> str:
    """``blake3:<hex>`` of the canonical form (what ``pipeline.identity.pipeline_hash`` equals)."""
    return bytes_digest(canonical_bytes(value))
