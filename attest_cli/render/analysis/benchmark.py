"""Renderers for benchmark results (``"schema": "attest.benchmark"``).

``attest analyze benchmark.json`` renders a result as text (the statistics table),
markdown, json (the validated result with its statistics recomputed from the raw samples)
or html (one self-contained page with per-step distributions). The work is done in
``attest_cli.bench`` and ``attest_cli.render.benchmark``; this module adapts a loaded
file to them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attest_cli.analysis.subject import Subject

if TYPE_CHECKING:
    from attest_cli.bench.result import BenchmarkResult


def _result(subject: Subject) -> BenchmarkResult:
    from attest_cli.bench.result import BenchmarkResult

    return BenchmarkResult.from_dict(subject.data, source=str(subject.path))


def render_text(subject: Subject) -> str:
    from attest_cli.render.benchmark import result_text

    result = _result(subject)
    return "".join(result_text(result, metric=m) for m in ("wall", "cpu", "rss"))


def render_markdown(subject: Subject) -> str:
    from attest_cli.render.benchmark import result_markdown

    return result_markdown(_result(subject))


def render_json(subject: Subject) -> str:
    return str(_result(subject).to_json())


def render_html(subject: Subject) -> str:
    from attest_cli.render.benchmark_html import render_html as page

    return page(_result(subject))

