"""``--format text`` (the default): the answers, for a terminal, most important first."""

from __future__ import annotations

from attest_cli.analysis.answers import Answers, answers
from attest_cli.analysis.detect import CPU, MEMORY, RUN
from attest_cli.analysis.subject import Subject
from attest_cli.escaping import escape_control
from attest_cli.render.figures import location, seconds, share, size

TOP_STEPS = 10


def render(subject: Subject) -> str:
    return render_answers(answers(subject))


def render_answers(a: Answers) -> str:
    lines = [f"{a.file}: {_title(a)}"]
    if a.steps is not None:
        lines += ["", *_steps(a)]
    elif a.kind != RUN:
        lines += ["", "  (no run linked: the per-step figures come from the .attest.json file "
                  "that attest run --profile writes beside the profile)"]
    if a.cpu is not None:
        lines += ["", *_cpu(a)]
    if a.memory is not None:
        lines += ["", *_memory(a)]
    if a.profiler:
        own = a.profiler.get("attest_process", {})
        lines += ["", f"attest itself: CPU {seconds(own.get('cpu_user_seconds', 0))} user + "
                      f"{seconds(own.get('cpu_system_seconds', 0))} system, peak RSS "
                      f"{size(own.get('max_rss_bytes', 0))}; profiler overhead "
                      f"{seconds(a.profiler.get('overhead_seconds', 0))} (start, stop, write)",
                  f"run report: {a.profiler.get('run_report')}"]
    # every entry is one line: names from the analysed file (steps, functions, paths) escaped
    return "\n".join(escape_control(line) for line in lines) + "\n"


def _title(a: Answers) -> str:
    if a.kind == CPU:
        return f"CPU profile ({a.tool})"
    if a.kind == MEMORY:
        return f"memory capture ({a.tool})"
    return "run report"


def _steps(a: Answers) -> list[str]:
    s = a.steps
    assert s is not None
    out = [f"run {s.run_id} of pipeline '{s.pipeline}': {s.status} in "
           f"{seconds(s.duration_seconds)}, {len(s.steps)} step(s), parallel {s.parallel}",
           f"critical path: {' -> '.join(s.critical_path) or '(none)'} = "
           f"{seconds(s.critical_seconds)} ({share(s.critical_share)} of the run)",
           f"attest alone: {seconds(s.before_first_step)} before the first step, "
           f"{seconds(s.after_last_step)} after the last",
           "slowest steps:",
           f"  {'step':<24} {'wall':>9} {'share':>7} {'cpu user':>9} {'cpu sys':>9} "
           f"{'peak RSS':>9}  status"]
    for r in s.steps[:TOP_STEPS]:
        mark = " *" if r.critical else ""
        out.append(f"  {r.name[:24]:<24} {seconds(r.wall_seconds):>9} {share(r.share):>7} "
                   f"{seconds(r.cpu_user_seconds):>9} {seconds(r.cpu_system_seconds):>9} "
                   f"{size(r.max_rss_bytes):>9}  {r.status}{mark}")
    if len(s.steps) > TOP_STEPS:
        out.append(f"  ... {len(s.steps) - TOP_STEPS} more")
    out.append("  (* on the critical path; share = of the summed step wall time)")
    return out


def _cpu(a: Answers) -> list[str]:
    c = a.cpu
    assert c is not None
    out = [f"inside attest: {c.samples} samples in {len(c.threads) or 1} thread(s), "
           f"{seconds(c.duration_seconds)} wall, {seconds(c.sampled_seconds)} sampled",
           "hottest functions (self time):",
           f"  {'self':>9} {'share':>7} {'total':>9}  function"]
    for f in c.hottest:
        out.append(f"  {seconds(f.self_seconds):>9} {share(f.share):>7} "
                   f"{seconds(f.total_seconds):>9}  {f.function}  {location(f.file, f.line)}")
    if c.per_step:
        out += ["attest's own work per step (its worker thread, not waiting for the process):",
                f"  {'step':<24} {'in attest':>9} {'thread':>9}  mostly in"]
        for w in c.per_step[:TOP_STEPS]:
            out.append(f"  {w.step[:24]:<24} {seconds(w.attest_seconds):>9} "
                       f"{seconds(w.thread_seconds):>9}  {w.top_function or '-'}")
    return out


def _memory(a: Answers) -> list[str]:
    m = a.memory
    assert m is not None
    out = [f"peak memory: {size(m.peak_bytes)} ({m.total_allocations} allocations over "
           f"{seconds(m.duration_seconds)})",
           "top allocators at the peak:",
           f"  {'held':>9} {'share':>7} {'allocs':>7}  function"]
    for al in m.top_allocators:
        out.append(f"  {size(al.bytes):>9} {share(al.share):>7} {al.allocations:>7}  "
                   f"{al.function}  {location(al.file, al.line)}")
    return out

