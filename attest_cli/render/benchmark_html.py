"""One self-contained HTML page for a benchmark result: per-step distributions as inline
SVG (every sample as a dot over a box from the quartiles, whiskers to min and max), the
statistics table, the iteration sequence of the total, environment and warnings. No
script, no font, nothing fetched: it opens offline and in a CI artifact viewer."""

from __future__ import annotations

from html import escape

from attest_cli.bench.result import METRICS, TOTAL, BenchmarkResult
from attest_cli.bench.stats import percentile, summarize
from attest_cli.render.analysis.html import CSS as REPORT_CSS
from attest_cli.render.benchmark import describe_result, fmt_value

# The page shares the look of ``attest analyze``'s other HTML reports.
CSS = REPORT_CSS + """
.warn{color:#8a5a00} svg text{font:11px system-ui,sans-serif;fill:#5b6475}
"""

WIDTH, LABEL_W, ROW_H = 900, 150, 34


def _span(values: list[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.08 or max(abs(hi) * 0.01, 1e-9)
    return lo - pad, hi + pad


def distributions_svg(result: BenchmarkResult, metric: str) -> str:
    """One row per series (total first), each on its own scale so that its spread shows:
    quartile box, median bar, min-max whisker and every sample (outliers in red)."""
    names = [TOTAL, *result.step_names]
    left, right = LABEL_W + 80, WIDTH - 90
    height = ROW_H * len(names) + 8
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'role="img" aria-label="{escape(metric)} distributions">']
    for i, name in enumerate(names):
        values = result.series(name, metric)
        lo, hi = _span(values)

        def x(v: float, lo: float = lo, hi: float = hi) -> float:
            return left + (right - left) * (v - lo) / (hi - lo)

        cy = ROW_H * i + ROW_H / 2
        s = summarize(values)
        q1, q3 = percentile(values, 25), percentile(values, 75)
        out.append(f'<text x="4" y="{cy + 4:.1f}">{escape(name)}</text>')
        out.append(f'<text x="{left - 6}" y="{cy + 4:.1f}" text-anchor="end">'
                   f'{escape(fmt_value(s.min, metric))}</text>')
        out.append(f'<text x="{right + 6}" y="{cy + 4:.1f}">'
                   f'{escape(fmt_value(s.max, metric))}</text>')
        out.append(f'<line x1="{x(s.min):.1f}" x2="{x(s.max):.1f}" y1="{cy:.1f}" y2="{cy:.1f}" '
                   'stroke="#8c95a6"/>')
        out.append(f'<rect x="{x(q1):.1f}" y="{cy - 9:.1f}" width="{max(x(q3) - x(q1), 1):.1f}" '
                   'height="18" fill="#dfe7f8" stroke="#3f6fd8"/>')
        out.append(f'<line x1="{x(s.median):.1f}" x2="{x(s.median):.1f}" y1="{cy - 9:.1f}" '
                   f'y2="{cy + 9:.1f}" stroke="#1d2330" stroke-width="2"/>')
        for k, v in enumerate(values):
            jitter = ((k * 7) % 11 - 5) * 1.2
            colour = "#b3261e" if k in s.outliers else "#3f6fd8"
            out.append(f'<circle cx="{x(v):.1f}" cy="{cy + jitter:.1f}" r="2.6" '
                       f'fill="{colour}" fill-opacity="0.75"><title>{escape(name)} #{k + 1}: '
                       f'{escape(fmt_value(v, metric))}</title></circle>')
    out.append("</svg>")
    return "".join(out)


def sequence_svg(values: list[float], metric: str) -> str:
    """The total per iteration, in order: drift or a slow first run shows at a glance."""
    h, pad = 140, 40
    lo, hi = _span(values)
    n = len(values)
    step = (WIDTH - 2 * pad - 60) / max(n - 1, 1)

    def pt(i: int, v: float) -> str:
        return f"{pad + 60 + i * step:.1f},{h - 24 - (h - 44) * (v - lo) / (hi - lo):.1f}"

    pts = " ".join(pt(i, v) for i, v in enumerate(values))
    dots = "".join(f'<circle cx="{pt(i, v).split(",")[0]}" cy="{pt(i, v).split(",")[1]}" '
                   f'r="3" fill="#3f6fd8"><title>#{i + 1}: {escape(fmt_value(v, metric))}'
                   '</title></circle>' for i, v in enumerate(values))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{h}" role="img" '
            f'aria-label="total per iteration"><polyline points="{pts}" fill="none" '
            f'stroke="#8c95a6"/>{dots}<text x="{pad + 60}" y="{h - 4}">iteration 1</text>'
            f'<text x="{WIDTH - pad - 60}" y="{h - 4}">iteration {n}</text>'
            f'<text x="4" y="24">{escape(fmt_value(max(values), metric))}</text>'
            f'<text x="4" y="{h - 24}">{escape(fmt_value(min(values), metric))}</text></svg>')


def _stats_table(result: BenchmarkResult, metric: str) -> str:
    head = "".join(f"<th>{c}</th>" for c in ("step", "mean", "σ", "median", "min", "max", "p95",
                                             "MAD", "outliers"))
    rows = []
    for name in [TOTAL, *result.step_names]:
        s = result.summary(name, metric)
        cells = "".join(f'<td class="num">{escape(fmt_value(v, metric))}</td>'
                        for v in (s.mean, s.stdev, s.median, s.min, s.max, s.p95, s.mad))
        label = f"<b>{escape(name)}</b>" if name == TOTAL else escape(name)
        rows.append(f'<tr><td>{label}</td>{cells}<td class="num">{len(s.outliers)}</td></tr>')
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def render_html(result: BenchmarkResult) -> str:
    env_rows = "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>"
                       for k, v in result.environment.items())
    warnings = "".join(f'<li class="warn">{escape(w)}</li>' for w in result.warnings) or \
        "<li>none</li>"
    sections = []
    for metric in METRICS:
        title = {"wall": "Wall time", "cpu": "CPU time (user + system)",
                 "rss": "Peak RSS"}[metric]
        sections.append(f"<section><h2>{title}: distribution per step</h2>"
                        "<p>Each row on its own scale, from its minimum to its maximum; the "
                        "box spans the middle half, the bar is the median.</p>"
                        f"{distributions_svg(result, metric)}{_stats_table(result, metric)}"
                        "</section>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>attest benchmark {escape(result.label)}</title><style>{CSS}</style></head>
<body><header><h1>Benchmark {escape(result.label)}</h1>
<p>{escape(describe_result(result))}</p></header><main>
<section><h2>Warnings</h2><ul>{warnings}</ul></section>
<section><h2>Total wall time per iteration</h2>
{sequence_svg(result.series(TOTAL, "wall"), "wall")}</section>
{''.join(sections)}
<section><h2>Environment</h2><table>{env_rows}</table></section>
</main></body></html>
"""
