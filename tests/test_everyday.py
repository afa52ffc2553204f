"""Everyday use: positional steps, consistent short flags, usage errors, completions, the man
page, and the critical path after a cached run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support import attest, write_pipeline


def test_pipeline_show_after_cached_rerun_weighs_by_last_executed_durations(
        project: Path) -> None:
    write_pipeline(project, """
        name: demo
        steps:
          slow: {run: 'sleep 0.4'}
          fast1: {run: 'true'}
          fast2: {run: 'true', needs: [fast1]}
          fast3: {run: 'true', needs: [fast2]}
    """)
    assert attest("run", cwd=project).returncode == 0
    second = attest("run", cwd=project)
    assert second.returncode == 0
    runs = sorted((project / ".attest" / "runs").glob("*.json"))
    assert len(runs) == 2
    assert {s["status"] for s in json.loads(runs[-1].read_text())["steps"]} == {"cached"}

    shown = attest("pipeline", "show", "-f", "json", cwd=project)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    # by step count the 3-step chain would win; by the first run's durations `slow` does
    assert data["weight_unit"] == "seconds"
    assert data["critical_path"] == ["slow"]
    assert 0.35 < data["critical_path_weight"] < 30

    text = attest("pipeline", "show", cwd=project).stdout
    last = text.strip().splitlines()[-1]
    assert last.startswith("critical path (*): slow  (")
    assert re.fullmatch(r"critical path \(\*\): slow  \(\d+ms\)", last) or \
        re.fullmatch(r"critical path \(\*\): slow  \(\d+\.\ds\)", last), last


def test_durations_are_formatted_for_humans() -> None:
    from attest_cli.pipeline.graph import human_duration

    assert human_duration(0.35) == "350ms"
    assert human_duration(0.0004) == "0ms"
    assert human_duration(1.234) == "1.2s"
    assert human_duration(59.94) == "59.9s"
    assert human_duration(123.4) == "2m03s"
    assert human_duration(3725) == "1h02m05s"


# -- item 12: positional steps, short flags, usage errors -------------------------------------
SELECTABLE = """
    name: sel
    steps:
      fetch: {run: 'echo fetched > fetch.txt'}
      build: {run: 'echo built > build.txt', needs: [fetch]}
      test: {run: 'echo tested > test.txt'}
      deploy: {run: 'echo deployed > deploy.txt', needs: [build, test]}
"""


def _ran(project: Path, report: str) -> set[str]:
    data = json.loads((project / report).read_text())
    return {s["name"] for s in data["steps"] if s["status"] in ("success", "cached")}


def test_positional_step_names_run_like_repeated_step_options(project: Path) -> None:
    write_pipeline(project, SELECTABLE)
    positional = attest("run", "build", "test", "--report", "a.json", "--no-cache", cwd=project)
    assert positional.returncode == 0, positional.stderr
    flags = attest("run", "--step", "build", "--step", "test", "--report", "b.json",
                   "--no-cache", cwd=project)
    assert flags.returncode == 0, flags.stderr
    assert _ran(project, "a.json") == _ran(project, "b.json") == {"fetch", "build", "test"}
    assert not (project / "deploy.txt").exists()
    # both spellings at once add up; an unknown name is the same one-line error either way
    mixed = attest("run", "test", "--step", "fetch", "--report", "c.json", cwd=project)
    assert mixed.returncode == 0 and _ran(project, "c.json") == {"test", "fetch"}
    for args in (["run", "buld"], ["run", "--step", "buld"]):
        bad = attest(*args, cwd=project)
        assert bad.returncode == 2
        assert bad.stderr.startswith("attest: error: ")
        assert "buld" in bad.stderr and "build" in bad.stderr  # the suggestion
        assert len(bad.stderr.strip().splitlines()) == 1


def _short_flags() -> dict[str, dict[str, set[str]]]:
    """short flag -> long name -> commands using that pair."""
    from attest_cli.docgen import command_tree

    out: dict[str, dict[str, set[str]]] = {}
    for info in command_tree():
        for flags, _help, _choices, _takes in info.options:
            longs = [f for f in flags if f.startswith("--")]
            for short in (f for f in flags if not f.startswith("--")):
                for long in longs:
                    out.setdefault(short, {}).setdefault(long, set()).add(" ".join(info.path))
    return out


def test_each_short_flag_means_one_thing_across_commands() -> None:
    shorts = _short_flags()
    meanings = {short: sorted(longs) for short, longs in shorts.items()}
    # -n is "how many" everywhere: the runs `history` lists, the iterations `benchmark` times
    # (as in `git log -n` and `timeit -n`)
    clashes = {s: m for s, m in meanings.items() if len(m) > 1 and s != "-n"}
    assert clashes == {}
    assert meanings["-n"] == ["--iterations", "--limit"]
    assert meanings["-f"] == ["--format"] and meanings["-o"] == ["--output"]
    assert meanings["-p"] == ["--pipeline"]


def test_format_output_and_pipeline_file_options_all_have_their_short_flag() -> None:
    from attest_cli.docgen import command_tree

    missing = []
    for info in command_tree():
        for flags, _help, _choices, _takes in info.options:
            expected = {"--format": "-f", "--output": "-o", "--pipeline": "-p"}
            for long, short in expected.items():
                # `history --pipeline NAME` filters by pipeline name, not a file: no -p there
                if long in flags and short not in flags and info.path != ("history",):
                    missing.append(f"{' '.join(info.path)} {long}")
    assert missing == []


def test_short_format_flag_works_where_only_the_long_name_did(project: Path) -> None:
    write_pipeline(project, SELECTABLE)
    assert attest("run", cwd=project).returncode == 0
    for args in (["history", "-f", "json"], ["cache", "stats", "-f", "json"],
                 ["config", "list", "-f", "json"], ["run", "--dry-run", "-f", "json"]):
        proc = attest(*args, cwd=project)
        assert proc.returncode == 0, (args, proc.stderr)
        json.loads(proc.stdout)
    long_ = attest("history", "--format", "json", cwd=project)  # old long names still work
    assert long_.returncode == 0 and json.loads(long_.stdout)


@pytest.mark.parametrize(("args", "message"), [
    (["run", "--nope"], "no such option: --nope"),
    (["config", "get"], "missing argument 'KEY'"),
    (["run", "--profile", "gpu"], "invalid value for '--profile': 'gpu' is not one of "
                                  "'cpu', 'memory'"),
    (["frob"], "no such command 'frob'"),
    (["run", "-j", "x"], "invalid value for '--parallel' / '-j'"),
    (["history", "extra", "args"], "unexpected extra argument"),
])
def test_click_usage_errors_are_one_attest_error_line_with_a_help_hint(
        project: Path, args: list[str], message: str) -> None:
    write_pipeline(project, SELECTABLE)
    proc = attest(*args, cwd=project)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("attest: error: "), lines[0]
    assert message in lines[0]
    command = " ".join(["attest", *[a for a in args[:2] if a in ("run", "config", "get",
                                                                   "history")]])
    assert lines[0].endswith(f"(see '{command} --help')"), lines[0]
    assert proc.stdout == ""


def test_a_bare_group_still_prints_its_help(project: Path) -> None:
    proc = attest("config", cwd=project)
    assert proc.returncode == 2
    assert "Usage: attest config [OPTIONS] COMMAND" in proc.stderr + proc.stdout
    assert "attest: error" not in proc.stderr
