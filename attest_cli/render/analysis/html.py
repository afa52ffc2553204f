"""``--format html``: one self-contained page that works offline.

The page leads with the answer (slowest steps and critical path, hottest functions, peak
memory and top allocators, each with its figure and share), then embeds the profiler's own
interactive viewer in an ``iframe srcdoc`` so its styles and scripts cannot clash with ours:
pyinstrument's HTML renderer with its web-font stylesheet link removed, or memray's flame
graph rendered with ``no_web`` (vendored assets inlined). Nothing is fetched from a network.
"""

from __future__ import annotations

import re
from html import escape

from attest_cli.analysis.answers import Answers, answers
from attest_cli.analysis.detect import CPU, MEMORY, RUN
from attest_cli.analysis.steps import StepsSummary
from attest_cli.analysis.subject import Subject
from attest_cli.render.figures import location, seconds, share, size

# pyinstrument's app.js injects <link href="https://fonts.googleapis.com/css?..."> at load;
# an empty data: stylesheet keeps the page's code path intact and the fonts local.
_WEB_FONTS = re.compile(r"https?://fonts\.(?:googleapis|gstatic)\.com/[^\"'\s)]*")

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;
background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:20px} header p{margin:4px 0 0;color:#c6cbd6}
main{padding:8px 24px 24px;max-width:1200px}
section{background:#fff;border:1px solid #dde1e8;border-radius:6px;margin:16px 0;
padding:12px 16px}
h2{font-size:16px;margin:0 0 8px}
.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{flex:1 1 220px;background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:10px 14px}
.card b{display:block;font-size:22px} .card span{color:#5b6475}
table{border-collapse:collapse;width:100%} th,td{text-align:left;padding:4px 8px;
border-bottom:1px solid #eef0f4;vertical-align:top} th{color:#5b6475;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.bar{background:#e3e8f2;height:8px;border-radius:4px;min-width:80px}
.bar i{display:block;height:8px;border-radius:4px;background:#3f6fd8}
.crit{color:#b3261e;font-weight:600} code{font-size:12px;color:#5b6475}
.timeline{position:relative} .lane{position:relative;height:26px;border-bottom:1px dashed #eef0f4}
.lane label{position:absolute;left:0;width:70px;top:5px;color:#5b6475;font-size:12px}
.span{position:absolute;top:3px;height:20px;border-radius:3px;background:#3f6fd8;color:#fff;
font-size:11px;overflow:hidden;white-space:nowrap;padding:0 4px;box-sizing:border-box}
.span.failure{background:#b3261e} .span.cached{background:#5f9e6e}
.span.crit{outline:2px solid #f2b01e}
iframe{width:100%;height:80vh;border:1px solid #dde1e8;border-radius:6px;background:#fff}
"""


def render(subject: Subject) -> str:
    a = answers(subject)
    parts = [_cards(a)]
    if a.steps is not None:
        parts.append(_steps(a.steps))
        parts.append(_timeline(a.steps))
    elif a.kind != RUN:
        parts.append("<section><h2>Steps</h2><p>No run is linked to this profile (the link is "
                     "the <code>.attest.json</code> file <code>attest run --profile</code> "
                     "writes beside it).</p></section>")
    if a.cpu is not None:
        parts.append(_hottest(a))
    if a.memory is not None:
        parts.append(_allocators(a))
    if a.profiler:
        parts.append(_attest_itself(a))
    viewer = _viewer(subject)
    if viewer:
        title = "pyinstrument call tree" if a.kind == CPU else "memray flame graph (at the peak)"
        parts.append(f'<section><h2>{title}</h2><iframe title="{title}" '
                     f'srcdoc="{escape(viewer, quote=True)}"></iframe></section>')
    what = {CPU: "CPU profile", MEMORY: "Memory profile", RUN: "Run report"}[a.kind]
    head = f"{what}: {a.steps.pipeline}" if a.steps else what
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>attest analyze — {escape(head)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>{escape(head)}</h1><p>{escape(a.file)} · {escape(a.tool)}</p></header>"
            f"<main>{''.join(parts)}</main></body></html>\n")


def offline_pyinstrument_html(session: object) -> str:
    from pyinstrument.renderers.html import HTMLRenderer

    return _WEB_FONTS.sub("data:text/css,", HTMLRenderer().render(session))  # type: ignore[arg-type]


def _viewer(subject: Subject) -> str | None:
    if subject.kind == CPU:
        return offline_pyinstrument_html(subject.data)
    if subject.kind == MEMORY:
        from memray.reporters.flamegraph import FlameGraphReporter

        from attest_cli.render.analysis.flamegraph import memray_html

        return memray_html(subject.data, FlameGraphReporter)
    return None


def _card(value: str, label: str) -> str:
    return f'<div class="card"><b>{escape(value)}</b><span>{escape(label)}</span></div>'


def _cards(a: Answers) -> str:
    cards = []
    if a.steps is not None:
        s = a.steps
        cards.append(_card(seconds(s.duration_seconds),
                           f"run {s.status}, {len(s.steps)} steps, parallel {s.parallel}"))
        if s.steps:
            top = s.steps[0]
            cards.append(_card(top.name, f"slowest step: {seconds(top.wall_seconds)}, "
                               f"{share(top.share)} of step time"))
        cards.append(_card(seconds(s.critical_seconds),
                           f"critical path ({share(s.critical_share)} of the run): "
                           + " → ".join(s.critical_path)))
    if a.cpu is not None and a.cpu.hottest:
        hot = a.cpu.hottest[0]
        cards.append(_card(hot.function, f"hottest function: {seconds(hot.self_seconds)} self, "
                           f"{share(hot.share)} of sampled time"))
    if a.memory is not None:
        cards.append(_card(size(a.memory.peak_bytes), "peak memory of attest"))
        if a.memory.top_allocators:
            top_alloc = a.memory.top_allocators[0]
            cards.append(_card(top_alloc.function, f"top allocator: {size(top_alloc.bytes)}, "
                               f"{share(top_alloc.share)} of the peak"))
    return f'<div class="cards">{"".join(cards)}</div>'


def _bar(fraction: float) -> str:
    return f'<div class="bar"><i style="width:{max(0.0, min(fraction, 1.0)) * 100:.1f}%"></i></div>'


def _steps(s: StepsSummary) -> str:
    rows = []
    for r in s.steps:
        name = f'<span class="crit">{escape(r.name)}</span>' if r.critical else escape(r.name)
        rows.append(f"<tr><td>{name}</td><td class=num>{seconds(r.wall_seconds)}</td>"
                    f"<td class=num>{share(r.share)}</td><td>{_bar(r.share)}</td>"
                    f"<td class=num>{seconds(r.cpu_user_seconds)}</td>"
                    f"<td class=num>{seconds(r.cpu_system_seconds)}</td>"
                    f"<td class=num>{size(r.max_rss_bytes)}</td><td>{escape(r.status)}"
                    f"{' (cache hit)' if r.cache_hit else ''}</td></tr>")
    path = " → ".join(escape(n) for n in s.critical_path) or "(none)"
    return ("<section><h2>Slowest steps</h2>"
            f"<p>Critical path: <span class=crit>{path}</span> = "
            f"{seconds(s.critical_seconds)} ({share(s.critical_share)} of the "
            f"{seconds(s.duration_seconds)} run). Share = of the summed step wall time "
            f"({seconds(s.step_wall_total)}). attest alone: "
            f"{seconds(s.before_first_step)} before the first step, "
            f"{seconds(s.after_last_step)} after the last.</p>"
            "<table><thead><tr><th>step</th><th>wall</th><th>share</th><th></th>"
            "<th>CPU user</th><th>CPU system</th><th>peak RSS</th><th>status</th></tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table></section>")


def _timeline(s: StepsSummary) -> str:
    span_total = max([s.duration_seconds] + [(r.start_offset or 0) + r.wall_seconds
                                             for r in s.steps]) or 1.0
    lanes: dict[int, list[str]] = {}
    for r in s.steps:
        if r.slot is None or r.start_offset is None:
            continue
        left = r.start_offset / span_total * 100
        width = max(r.wall_seconds / span_total * 100, 0.3)
        cls = " ".join(c for c in ("span", r.status, "crit" if r.critical else "") if c)
        tip = f"{r.name}: {seconds(r.wall_seconds)} ({r.status})"
        lanes.setdefault(r.slot, []).append(
            f'<div class="{cls}" title="{escape(tip)}" style="left:calc(70px + '
            f'(100% - 70px) * {left / 100:.5f});width:calc((100% - 70px) * '
            f'{width / 100:.5f})">{escape(r.name)}</div>')
    body = "".join(f'<div class="lane"><label>slot {slot}</label>{"".join(spans)}</div>'
                   for slot, spans in sorted(lanes.items()))
    return ("<section><h2>Timeline (one lane per step in flight)</h2>"
            f'<div class="timeline">{body or "<p>No step ran.</p>"}</div></section>')


def _hottest(a: Answers) -> str:
    c = a.cpu
    assert c is not None
    rows = "".join(
        f"<tr><td>{escape(f.function)}<br><code>{escape(location(f.file, f.line))}</code></td>"
        f"<td class=num>{seconds(f.self_seconds)}</td><td class=num>{share(f.share)}</td>"
        f"<td>{_bar(f.share)}</td><td class=num>{seconds(f.total_seconds)}</td></tr>"
        for f in c.hottest)
    work = "".join(
        f"<tr><td>{escape(w.step)}</td><td class=num>{seconds(w.attest_seconds)}</td>"
        f"<td class=num>{seconds(w.thread_seconds)}</td><td>{escape(w.top_function or '-')}"
        "</td></tr>" for w in c.per_step)
    if work:
        work = ("<h2>attest's own work per step</h2><p>Time in each step's worker thread "
                "that was not spent waiting for the step's process (cache, spawning, "
                "hashing).</p><table><thead><tr><th>step</th><th>in attest</th><th>thread"
                f"</th><th>mostly in</th></tr></thead><tbody>{work}</tbody></table>")
    return ("<section><h2>Hottest functions inside attest</h2>"
            f"<p>{c.samples} samples in {len(c.threads) or 1} thread(s); "
            f"{seconds(c.duration_seconds)} wall, {seconds(c.sampled_seconds)} sampled over "
            "all threads. Share = self time over sampled time.</p>"
            "<table><thead><tr><th>function</th><th>self</th><th>share</th><th></th>"
            f"<th>total</th></tr></thead><tbody>{rows}</tbody></table>{work}</section>")


def _allocators(a: Answers) -> str:
    m = a.memory
    assert m is not None
    rows = "".join(
        f"<tr><td>{escape(al.function)}<br><code>{escape(location(al.file, al.line))}</code>"
        f"</td><td class=num>{size(al.bytes)}</td><td class=num>{share(al.share)}</td>"
        f"<td>{_bar(al.share)}</td><td class=num>{al.allocations}</td></tr>"
        for al in m.top_allocators)
    return ("<section><h2>Peak memory and its top allocators</h2>"
            f"<p>Peak {size(m.peak_bytes)}; {m.total_allocations} allocations over "
            f"{seconds(m.duration_seconds)}. Memory held at the peak, by the line that "
            "allocated it.</p><table><thead><tr><th>function</th><th>held</th><th>share</th>"
            f"<th></th><th>allocations</th></tr></thead><tbody>{rows}</tbody></table></section>")


def _attest_itself(a: Answers) -> str:
    p = a.profiler or {}
    own = p.get("attest_process", {})
    return ("<section><h2>attest itself</h2>"
            f"<p>CPU {seconds(own.get('cpu_user_seconds', 0))} user + "
            f"{seconds(own.get('cpu_system_seconds', 0))} system; peak RSS "
            f"{size(own.get('max_rss_bytes', 0))}. Profiler overhead: "
            f"{seconds(p.get('overhead_seconds', 0))} to start, stop and write. Run report: "
            f"<code>{escape(str(p.get('run_report', '')))}</code></p></section>")

