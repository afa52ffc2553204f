"""Renderers for benchmark results (``"schema": "attest.benchmark"``).

``attest analyze benchmark.json`` renders a result as text (the statistics table),
markdown, json (the validated result with its statistics recomputed from the raw samples)
or html (one self-contained page with per-step distributions). The work is done in
``attest_cli.bench``; this module only registers it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attest_cli.analysis.detect import BENCHMARK
from attest_cli.analysis.registry import register
from attest_cli.analysis.subject import Subject

if TYPE_CHECKING:
    from attest_cli.bench.result import BenchmarkResult


def _result(subject: Subject) -> BenchmarkResult:
    from attest_cli.bench.result import BenchmarkResult

    return BenchmarkResult.from_dict(subject.data, source=str(subject.path))


def render_text(subject: Subject) -> str:
    from attest_cli.bench.render import result_text

    result = _result(subject)
    return "".join(result_text(result, metric=m) for m in ("wall", "cpu", "rss"))


def render_markdown(subject: Subject) -> str:
    from attest_cli.bench.render import result_markdown

    return result_markdown(_result(subject))


def render_json(subject: Subject) -> str:
    return str(_result(subject).to_json())


def render_html(subject: Subject) -> str:
    from attest_cli.bench.html import render_html as page

    return page(_result(subject))


register(BENCHMARK, "text", render_text)
register(BENCHMARK, "markdown", render_markdown)
register(BENCHMARK, "json", render_json)
register(BENCHMARK, "html", render_html)
