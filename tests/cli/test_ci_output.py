"""Plain and GitHub Actions output as a CI log shows it: a cached step is one line, the
console holds no JSON log lines, and annotations point at the pipeline file's line."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import attest, write_pipeline

PIPELINE = """
name: ci
steps:
  gen:
    run: 'echo making gen; echo gen > gen.txt'
    outputs: [gen.txt]
  use:
    run: 'echo using gen; cat gen.txt > use.txt'
    needs: [gen]
    outputs: [use.txt]
  check:
    run: 'echo checking; test -z "$BREAK" || exit 4'
    needs: [use]
    cache: false
"""
CHECK_LINE = 10  # the line of `check:` in PIPELINE


def json_lines(text: str) -> list[str]:
    """Lines that parse as a JSON object (a structured log line)."""
    out = []
    for line in text.splitlines():
        try:
            if isinstance(json.loads(line), dict):
                out.append(line)
        except ValueError:
            pass
    return out


def view_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line not in json_lines(text)]


def test_plain_output_shows_each_cached_step_as_one_line(project: Path) -> None:
    write_pipeline(project, PIPELINE)
    assert attest("run", cwd=project).returncode == 0
    again = attest("run", cwd=project)
    assert again.returncode == 0, again.stderr
    lines = view_lines(again.stderr)
    assert [line for line in lines if "gen" in line] == ["◆ gen cached (local)"]
    assert [line for line in lines if "use" in line] == ["◆ use cached (local)"]
    # the step that ran still shows its command and its output
    assert "▶ check: echo checking; test -z \"$BREAK\" || exit 4" in lines
    assert "[check] checking" in lines
    assert lines.index("◆ gen cached (local)") < lines.index("◆ use cached (local)") < \
        lines.index("[check] checking")
    # the replayed output is not shown, but it is in the step's log file of this run
    logs = sorted((project / ".attest" / "logs").iterdir())[-1]
    assert (logs / "gen.log").read_text() == "making gen\n"
    assert (logs / "use.log").read_text() == "using gen\n"


def test_plain_output_of_a_first_run_still_shows_commands_and_output(project: Path) -> None:
    write_pipeline(project, PIPELINE)
    proc = attest("run", cwd=project)
    assert proc.returncode == 0, proc.stderr
    lines = view_lines(proc.stderr)
    assert lines[:3] == ["▶ gen: echo making gen; echo gen > gen.txt", "[gen] making gen",
                         lines[2]]
    assert lines[2].startswith("✓ gen (")
    assert "[use] using gen" in lines and "▶ use: echo using gen; cat gen.txt > use.txt" in lines


def test_github_actions_console_has_no_json_and_points_errors_at_the_step_line(
        project: Path) -> None:
    write_pipeline(project, PIPELINE)
    env = {"GITHUB_ACTIONS": "true"}
    assert attest("run", cwd=project, env=env).returncode == 0
    proc = attest("run", cwd=project, env={**env, "BREAK": "1"})
    assert proc.returncode == 1
    assert json_lines(proc.stdout) == [] and json_lines(proc.stderr) == []
    out = proc.stdout.splitlines()
    # cached steps: one line each, no group of replayed output
    assert [line for line in out if "gen" in line] == ["◆ gen cached (local)"]
    assert [line for line in out if "use" in line] == ["◆ use cached (local)"]
    assert [line for line in out if line.startswith("::group::")] == \
        [next(line for line in out if line.startswith("::group::✗ check failed: exit code 4"))]
    assert f"::error file=attest.yaml,line={CHECK_LINE}::step check failed: exit code 4" in out
    # the annotations are on stdout, where the runner reads workflow commands
    assert "::" not in proc.stderr


def test_github_actions_json_logs_only_when_asked_and_never_on_stdout(project: Path) -> None:
    write_pipeline(project, PIPELINE)
    proc = attest("run", "--log-format", "json", cwd=project, env={"GITHUB_ACTIONS": "true"})
    assert proc.returncode == 0, proc.stderr
    assert json_lines(proc.stdout) == []
    messages = [json.loads(line)["message"] for line in json_lines(proc.stderr)]
    assert "Pipeline execution completed" in messages


def test_github_actions_annotates_a_pipeline_error_with_its_file_and_line(
        project: Path) -> None:
    write_pipeline(project, "name: x\nsteps:\n  a: {run: 'true'}\nbogus: 1\n")
    proc = attest("run", cwd=project, env={"GITHUB_ACTIONS": "true"})
    assert proc.returncode == 2
    assert proc.stderr == "attest: error: attest.yaml:4: bogus: unknown key\n"
    assert proc.stdout == "::error file=attest.yaml,line=4::attest.yaml:4: bogus: unknown key\n"
    # outside GitHub Actions nothing is added
    plain = attest("run", cwd=project)
    assert plain.stdout == "" and plain.returncode == 2


def test_github_actions_escapes_annotation_properties_and_data(project: Path) -> None:
    write_pipeline(project, "name: x\nsteps:\n  a: {run: 'exit 3'}\n",
                   name="my,pipe:line.yaml")
    proc = attest("run", "-p", "my,pipe:line.yaml", cwd=project,
                  env={"GITHUB_ACTIONS": "true"})
    assert proc.returncode == 1
    assert "::error file=my%2Cpipe%3Aline.yaml,line=3::step a failed: exit code 3" in \
        proc.stdout.splitlines()
