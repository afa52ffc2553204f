"""``--format speedscope`` (CPU): pyinstrument's speedscope export, for speedscope.app."""

from __future__ import annotations

from attest_cli.analysis.detect import CPU
from attest_cli.analysis.registry import register
from attest_cli.analysis.subject import Subject


def render(subject: Subject) -> str:
    from pyinstrument.renderers.speedscope import SpeedscopeRenderer

    return str(SpeedscopeRenderer().render(subject.data))


register(CPU, "speedscope", render)
