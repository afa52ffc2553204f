"""Masking of secret values in everything attest writes (logs, traces, reports, receipts)."""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"
MIN_SECRET_LENGTH = 3  # shorter values would mangle ordinary output and protect nothing


class SecretMasker:
    """Replaces every occurrence of the given secret values with ``***``."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        secrets = sorted({v for v in values if v and len(v) >= MIN_SECRET_LENGTH},
                         key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, secrets))) if secrets else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __call__(self, text: str) -> str:
        return self._pattern.sub(MASK, text) if self._pattern is not None else text

    def mapping(self, env: dict[str, str]) -> dict[str, str]:
        return {k: self(v) for k, v in env.items()}
