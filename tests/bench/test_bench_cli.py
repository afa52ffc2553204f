"""`attest benchmark` end to end: real pipelines of `sleep` steps, real git, real hyperfine."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support import attest, require_binary, write_pipeline

PIPELINE = """
version: "0.1"
name: demo
steps:
  fetch:
    run: sleep 0.1
  build:
    run: sleep {build}
    needs: [fetch]
"""


def _pipeline(root: Path, build: float = 0.1) -> None:
    write_pipeline(root, PIPELINE.format(build=build))


def _ok(proc: subprocess.CompletedProcess[str], code: int = 0) -> None:
    assert proc.returncode == code, proc.stdout + proc.stderr


def _bench(root: Path, *args: str) -> dict:
    proc = attest("benchmark", "pipeline", "--format", "json", *args, cwd=root)
    _ok(proc)
    return json.loads(proc.stdout)


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                          text=True).stdout.strip()


def _rows(comparison: dict) -> dict[str, dict]:
    return {r["name"]: r for r in comparison["rows"]}


def test_pipeline_records_samples_statistics_and_environment(project: Path) -> None:
    _pipeline(project)
    proc = attest("benchmark", "pipeline", "--iterations", "4", "--output", "benchmark.json",
                  cwd=project)
    _ok(proc)
    assert "fetch" in proc.stdout and "mean ± σ" in proc.stdout
    data = json.loads((project / "benchmark.json").read_text())
    assert data["schema"] == "attest.benchmark" and data["schema_version"] == 1
    assert data["pipeline"]["name"] == "demo" and data["pipeline"]["steps"] == ["fetch", "build"]
    assert data["pipeline"]["hash"].startswith("blake3:")
    assert data["settings"]["iterations"] == 4 and data["settings"]["cache"] == "cold"
    env = data["environment"]
    for key in ("attest_version", "python", "os", "cpu_count", "load_average", "hostname"):
        assert env[key], key
    assert env["git"] is None  # not a git repository
    for name in ("fetch", "build"):
        walls = data["samples"]["steps"][name]["wall"]
        assert len(walls) == 4 and all(w >= 0.1 for w in walls)
        st = data["statistics"]["steps"][name]["wall"]
        assert st["min"] <= st["median"] <= st["max"] and st["n"] == 4
        assert set(st) >= {"mean", "stdev", "median", "min", "max", "p95", "mad", "outliers"}
        assert data["samples"]["steps"][name]["rss"][0] > 0
        series = data["samples"]["steps"][name]
        for cpu, user, system in zip(series["cpu"], series["cpu_user"], series["cpu_system"],
                                     strict=True):
            assert cpu == pytest.approx(user + system, abs=2e-6)
        assert "cpu_user" in data["statistics"]["steps"][name]
    totals = data["samples"]["total"]["wall"]
    assert all(t >= 0.2 for t in totals)
    # Stored by label (no git here: the attest version) and listed.
    stored = project / ".attest" / "benchmarks" / f"{data['label']}.json"
    assert data["label"] == "attest-0.1.0" and stored.is_file()
    listing = attest("benchmark", "list", "--format", "json", cwd=project)
    _ok(listing)
    assert [e["label"] for e in json.loads(listing.stdout)] == ["attest-0.1.0"]


def test_prepare_runs_before_every_iteration_and_step_selects(project: Path) -> None:
    _pipeline(project)
    data = _bench(project, "-n", "3", "--warmup", "0", "--prepare", "echo x >> prepared.txt",
                  "--step", "fetch", "--label", "only-fetch")
    assert (project / "prepared.txt").read_text().count("x") == 3
    assert data["pipeline"]["steps"] == ["fetch"] and data["label"] == "only-fetch"
    failing = attest("benchmark", "pipeline", "-n", "2", "--prepare", "exit 3", cwd=project)
    _ok(failing, 1)
    assert "--prepare command failed with exit code 3" in failing.stderr


def test_identical_results_show_no_significant_change_and_pass_the_gate(project: Path) -> None:
    _pipeline(project)
    _bench(project, "-n", "5", "--output", "b.json")
    proc = attest("benchmark", "compare", "--baseline", "b.json", "--current", "b.json",
                  "--format", "json", "--fail-on-regression", "0", cwd=project)
    _ok(proc)
    data = json.loads(proc.stdout)
    assert {r["verdict"] for r in data["rows"]} == {"no significant change"}
    assert data["gate"] == {"threshold_pct": 0.0, "failed": False, "regressions": []}
    assert data["test"].startswith("Mann-Whitney U")
    for metric in ("cpu", "rss"):
        other = attest("benchmark", "compare", "--baseline", "b.json", "--current", "b.json",
                       "--metric", metric, "--format", "json", cwd=project)
        _ok(other)
        rows = _rows(json.loads(other.stdout))
        assert rows["build"]["change_pct"] == 0 and rows["build"]["p_value"] == 1.0
    listing = attest("benchmark", "list", cwd=project)
    _ok(listing)
    assert "attest-0.1.0" in listing.stdout and "cold" in listing.stdout


def test_git_refs_are_benchmarked_interleaved_and_a_slow_step_is_found(project: Path) -> None:
    """Two tags in a real repository; the 30% slower step is the only slower step."""
    _pipeline(project, build=0.2)
    (project / ".gitignore").write_text(".attest/\n")
    _git(project, "init", "-q")
    _git(project, "-c", "user.email=t@example.com", "-c", "user.name=t", "add", ".")
    _git(project, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "one")
    _git(project, "tag", "v0.1.0")
    _pipeline(project, build=0.26)
    _git(project, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qam", "two")
    _git(project, "tag", "v0.2.0")
    # The uncommitted project config applies to the worktrees too.
    _ok(attest("config", "set", "parallel", "1", cwd=project))
    proc = attest("benchmark", "compare", "--baseline", "v0.1.0", "--current", "v0.2.0",
                  "--format", "json", "--iterations", "10", "--alpha", "0.01", cwd=project)
    _ok(proc)
    data = json.loads(proc.stdout)
    shown = json.dumps(data["rows"], indent=1)  # the whole table when an assertion fails
    stored = json.loads((project / ".attest" / "benchmarks" / "v0.1.0.json").read_text())
    assert stored["settings"]["parallel"] == 1
    rows = _rows(data)
    assert rows["build"]["verdict"] == "slower" and rows["build"]["p_value"] < 0.01, shown
    assert 10 < rows["build"]["change_pct"] < 60, shown  # +30% of the sleep, plus noise
    # the unchanged step is never called slower; at alpha 0.01 over 10 samples a loaded
    # 2-core runner can still shift it enough to read "faster" (seen once in CI under -n 4)
    assert rows["fetch"]["verdict"] != "slower", shown
    assert abs(rows["fetch"]["change_pct"]) < 10, shown
    # The total also carries the engine's own overhead, whose noise can hide +15% at n=8.
    assert rows["total"]["verdict"] != "faster" and rows["total"]["change_pct"] > 0, shown
    for role in ("baseline", "current"):
        assert data[role]["source"]["kind"] == "git-ref"
        assert data[role]["iterations"] == 10
    assert "temporary worktree" in " ".join(data["notes"].values())
    assert "interleaved" in data["notes"]["baseline"]
    assert "pipeline definitions differ" in proc.stderr
    # The worktrees are gone, the user's tree untouched, and both sides stored by tag.
    assert _git(project, "worktree", "list").count("\n") == 0
    assert _git(project, "status", "--porcelain") == ""
    assert {p.stem for p in (project / ".attest" / "benchmarks").glob("*.json")} == {
        "v0.1.0", "v0.2.0"}
    # Seed command, now from the stored labels, and the CI gate on top of it.
    table = attest("benchmark", "compare", "--baseline", "v0.1.0", "--current", "v0.2.0",
                   "--format", "table", cwd=project)
    _ok(table)
    assert "stored result" in table.stdout and "slower" in table.stdout
    gate = attest("benchmark", "compare", "--baseline", "v0.1.0", "--current", "v0.2.0",
                  "--fail-on-regression", "5", cwd=project)
    _ok(gate, 1)
    assert "performance regression above 5%:" in gate.stderr and "build" in gate.stderr
    lenient = attest("benchmark", "compare", "--baseline", "v0.1.0", "--current", "v0.2.0",
                     "--fail-on-regression", "60", "--format", "markdown", cwd=project)
    _ok(lenient)
    assert "| `build` |" in lenient.stdout and "gate passed" in lenient.stdout
    # A git ref against the working tree ('.', the default current side).
    work = attest("benchmark", "compare", "--baseline", "v0.2.0", "--fresh", "-n", "4",
                  "--format", "json", cwd=project)
    _ok(work)
    assert json.loads(work.stdout)["current"]["source"]["kind"] == "worktree"


def test_benchmark_counts_agree_with_hyperfine(project: Path) -> None:
    """A cross-check of what is measured, not of how fast: timings belong in benchmarks/
    (benchmarks/bench_vs_hyperfine.py compares the means), where a loaded machine cannot fail
    the suite."""
    hyperfine = require_binary("hyperfine")
    write_pipeline(project, """
        version: "0.1"
        name: one
        steps:
          nap:
            run: sleep 0.3
    """)
    data = _bench(project, "-n", "5", "--warmup", "1")
    subprocess.run([hyperfine, "-N", "--warmup", "1", "--runs", "5", "--export-json",
                    "h.json", "sh -c 'sleep 0.3'"], cwd=project, check=True,
                   capture_output=True)
    theirs = json.loads((project / "h.json").read_text())["results"]
    assert len(theirs) == 1 and len(theirs[0]["times"]) == 5
    # the same number of measured runs, warm-ups excluded, in the same unit
    assert data["settings"]["iterations"] == 5 and data["settings"]["warmup"] == 1
    assert len(data["runs"]) == len(theirs[0]["times"])
    assert data["statistics"]["steps"]["nap"]["wall"]["n"] == 5
    assert data["statistics"]["total"]["wall"]["n"] == 5
    assert data["units"]["wall"] == "seconds"
    # a physical floor, not a threshold: no load makes `sleep 0.3` take less than 0.3 s, in
    # either tool (a unit mix-up, ms vs s, would fail here)
    assert min(theirs[0]["times"]) >= 0.3
    assert data["statistics"]["steps"]["nap"]["wall"]["min"] >= 0.3
    assert data["statistics"]["total"]["wall"]["min"] >= \
        data["statistics"]["steps"]["nap"]["wall"]["min"]


BAD_RESULT = {"schema": "attest.benchmark", "schema_version": 99}


@pytest.mark.parametrize(("args", "message"), [
    (["compare", "--baseline", "nope"], "--baseline nope: not a result file, a stored label"),
    (["compare", "--baseline", "missing.json"], "missing.json: no such file"),
    (["compare", "--baseline", "garbage.json"], "garbage.json:1: not valid JSON"),
    (["compare", "--baseline", "v99.json"], "schema_version 99 is not supported"),
    (["compare", "--baseline", "other.json", "--current", "small.json"], "share no step"),
    (["compare", "--baseline", "small.json", "--current", "small.json"], "too few samples"),
    (["compare", "--baseline", "small.json", "--alpha", "0.9"], "--alpha 0.9"),
    (["compare", "--baseline", "small.json", "--metric", "joules"], "joules"),
    (["pipeline", "--iterations", "1"], "--iterations must be at least 2"),
    (["pipeline", "--label", "../escape"], "--label '../escape'"),
    (["pipeline", "--cache", "tepid"], "tepid"),
    (["pipeline", "--step", "nosuch"], "--step nosuch: no such step"),
])
def test_bad_input_is_one_line_and_exit_2(project: Path, args: list[str], message: str) -> None:
    _pipeline(project)
    (project / "garbage.json").write_text("{not json")
    (project / "v99.json").write_text(json.dumps(BAD_RESULT))
    small = {"schema": "attest.benchmark", "schema_version": 1, "label": "s",
             "pipeline": {"name": "demo"}, "settings": {"cache": "cold"},
             "environment": {},
             "samples": {"total": {m: [1.0, 1.1, 1.2] for m in ("wall", "cpu", "rss")},
                         "steps": {"fetch": {m: [1.0, 1.1, 1.2] for m in ("wall", "cpu",
                                                                            "rss")}}}}
    (project / "small.json").write_text(json.dumps(small))
    other = json.loads(json.dumps(small))
    other["samples"]["steps"] = {"lint": other["samples"]["steps"]["fetch"]}
    (project / "other.json").write_text(json.dumps(other))
    proc = attest("benchmark", *args, cwd=project)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_failing_pipeline_stops_the_benchmark_with_exit_1(project: Path) -> None:
    write_pipeline(project, """
        version: "0.1"
        name: broken
        steps:
          boom:
            run: echo missing node_modules; exit 4
    """)
    proc = attest("benchmark", "pipeline", "-n", "2", cwd=project)
    _ok(proc, 1)
    assert ("the pipeline failed during the benchmark: boom (exit code 4): missing "
            "node_modules (log: ") in proc.stderr
    assert not (project / ".attest" / "benchmarks").exists()


def test_warm_cache_measures_hits_and_beats_cold(project: Path) -> None:
    _pipeline(project)
    cold = _bench(project, "-n", "4", "--label", "cold")
    warm = _bench(project, "-n", "4", "--cache", "warm", "--warmup", "0", "--label", "warm")
    assert warm["settings"]["cache"] == "warm" and warm["settings"]["warmup"] == 1
    assert not any("missed the cache" in w for w in warm["warnings"]), warm["warnings"]
    for name in ("fetch", "build"):
        # A hit restores instead of sleeping 0.1 s; a cold run always sleeps.
        assert max(warm["samples"]["steps"][name]["wall"]) < 0.1
        assert min(cold["samples"]["steps"][name]["wall"]) >= 0.1
        assert max(warm["samples"]["steps"][name]["cpu"]) == 0  # no process ran
    proc = attest("benchmark", "compare", "--baseline", "cold", "--current", "warm",
                  "--format", "json", cwd=project)
    _ok(proc)
    data = json.loads(proc.stdout)
    assert {r["verdict"] for r in data["rows"]} == {"faster"}
    assert any("compares cache modes" in w for w in data["warnings"])


def test_analyze_renders_a_result_as_text_json_markdown_and_html(project: Path) -> None:
    _pipeline(project)
    _bench(project, "-n", "3", "--output", "benchmark.json")
    text = attest("analyze", "benchmark.json", cwd=project)
    _ok(text)
    assert "wall (per iteration)" in text.stdout and "peak RSS" in text.stdout
    as_json = attest("analyze", "benchmark.json", "--format", "json", cwd=project)
    _ok(as_json)
    assert json.loads(as_json.stdout)["statistics"]["steps"]["build"]["wall"]["n"] == 3
    md = attest("analyze", "benchmark.json", "--format", "markdown", cwd=project)
    _ok(md)
    assert "| `fetch` |" in md.stdout
    html = attest("analyze", "benchmark.json", "--output", "bench.html", cwd=project)
    _ok(html)
    page = (project / "bench.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    # Per-step distributions: every sample of every series is a dot, for all three metrics.
    assert page.count("<circle") == 3 * (3 * 3) + 3
    assert "build #3:" in page and "distribution per step" in page
    assert "<script" not in page and "<link" not in page
    assert "https://" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    wrong = attest("analyze", "benchmark.json", "--format", "speedscope", cwd=project)
    _ok(wrong, 2)
    assert "use one of: text, json, html, markdown" in wrong.stderr
    (project / "broken.json").write_text(json.dumps({"schema": "attest.benchmark",
                                                     "schema_version": 1, "label": "x"}))
    broken = attest("analyze", "broken.json", cwd=project)
    _ok(broken, 2)
    assert "broken.json: pipeline: missing or not a dict" in broken.stderr


def test_interrupt_keeps_the_iterations_measured_so_far(project: Path) -> None:
    import os
    import signal
    import sys

    write_pipeline(project, """
        version: "0.1"
        name: long
        steps:
          nap:
            run: sleep 0.2
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTEST_")}
    env["XDG_CONFIG_HOME"] = str(project / ".xdg")
    proc = subprocess.Popen([sys.executable, "-m", "attest_cli", "benchmark", "pipeline",
                             "-n", "50", "--label", "cut", "--output", "cut.json"],
                            cwd=project, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:  # progress lines, one per iteration (stderr is not a tty)
        if "iteration 3/50" in line:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "kept" in err and "measured iterations as 'cut'" in err
    data = json.loads((project / "cut.json").read_text())
    assert 3 <= len(data["samples"]["total"]["wall"]) < 50
    assert any(w.startswith("interrupted: only") for w in data["warnings"])
    assert (project / ".attest" / "benchmarks" / "cut.json").is_file()
