"""The key summary a lookup hands to its event: folded only when something reads it."""

from __future__ import annotations

import pytest

from attest_cli.cache import keys
from attest_cli.cache.keys import InputState, build_parts

pytestmark = pytest.mark.unit


def test_the_summary_is_folded_once_when_first_read(monkeypatch: pytest.MonkeyPatch) -> None:
    parts = build_parts(command="cc -c a.c", env={"CC": "gcc"}, upstream={},
                        inputs=[InputState(path=f"src/f{i}.c", kind="file", mode=0o644,
                                           digest=f"blake3:{i:064x}") for i in range(3)])
    folded: list[int] = []
    real = keys.KeyParts.summary
    monkeypatch.setattr(keys.KeyParts, "summary",
                        lambda self: (folded.append(1), real(self))[1])
    lazy = parts.lazy_summary()
    assert folded == []  # handed over, not computed
    assert dict(lazy) == real(parts) and lazy == real(parts)
    assert lazy["inputs"].startswith("3 file(s) ") and lazy["envs"].startswith("1 var(s) ")
    assert len(lazy) == len(real(parts)) and folded == [1]  # computed once, then kept
