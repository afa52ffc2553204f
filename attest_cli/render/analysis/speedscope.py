"""``--format speedscope`` (CPU): pyinstrument's speedscope export, for speedscope.app."""

from __future__ import annotations

from attest_cli.analysis.subject import Subject


def render(subject: Subject) -> str:
    from pyinstrument.renderers.speedscope import SpeedscopeRenderer

    return str(SpeedscopeRenderer().render(subject.data))

