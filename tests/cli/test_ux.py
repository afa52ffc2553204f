"""Terminal and CI presentation: live view on a tty, GitHub Actions folding, DAG drawings."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from attest_cli import __version__
from tests.support import attest, run_in_pty, write_pipeline


def test_github_actions_groups_annotations_and_summary(project: Path) -> None:
    write_pipeline(project, """
        steps:
          ok: {run: 'echo fine'}
          bad: {run: 'echo broken; exit 4', needs: [ok]}
    """)
    summary = project / "summary.md"
    proc = attest("run", cwd=project, env={"GITHUB_ACTIONS": "true",
                                           "GITHUB_STEP_SUMMARY": str(summary)})
    assert proc.returncode == 1
    out = proc.stdout  # the runner reads workflow commands on stdout
    assert "::group::✓ ok" in out and "fine\n::endgroup::" in out
    assert "::group::✗ bad failed: exit code 4" in out
    assert "::error file=attest.yaml,line=3::step bad failed: exit code 4" in out
    md = summary.read_text()
    assert "| ok | ✓ success |" in md and "| bad | ✗ failure |" in md and "| 4 |" in md




def test_live_view_on_a_terminal_ends_with_a_summary_table(project: Path) -> None:
    write_pipeline(project, """
        name: livedemo
        steps:
          a: {run: 'sleep 0.3'}
          b: {run: 'exit 2', needs: [a]}
    """)
    code, raw = run_in_pty(["run"], project)
    assert code == 1
    assert "\x1b[" in raw  # coloured on a terminal
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw)
    assert "livedemo — failure" in screen  # summary table title
    assert "step" in screen and "status" in screen and "peak rss" in screen
    assert "✗ b failed: exit code 2" in screen


def test_no_color_is_respected_on_a_terminal(project: Path) -> None:
    write_pipeline(project, "steps:\n  a: {run: 'true'}\n")
    code, text = run_in_pty(["run", "--log-format", "text"], project,
                            extra_env={"NO_COLOR": "1", "TERM": "xterm"})
    assert code == 0
    assert "Pipeline execution completed" in text
    assert not re.search(r"\x1b\[(3[0-7]|9[0-7]|38;)", text)  # no colour (bold is fine)


def test_pipeline_show_formats_mark_the_critical_path(project: Path) -> None:
    write_pipeline(project, """
        name: shapes
        steps:
          fetch: {run: 'true'}
          lint: {run: 'true', needs: [fetch]}
          compile: {run: 'true', needs: [fetch]}
          test: {run: 'true', needs: [compile]}
    """)
    as_json = json.loads(attest("pipeline", "show", "-f", "json", cwd=project).stdout)
    assert as_json["critical_path"] == ["fetch", "compile", "test"]
    assert as_json["levels"] == [["fetch"], ["lint", "compile"], ["test"]]
    dot = attest("pipeline", "show", "-f", "dot", cwd=project).stdout
    assert '"compile" -> "test" [color="red" penwidth=2];' in dot and '"fetch" -> "lint";' in dot
    mermaid = attest("pipeline", "show", "-f", "mermaid", cwd=project).stdout
    assert "s_compile ==> s_test" in mermaid and "s_fetch --> s_lint" in mermaid
    ascii_ = attest("pipeline", "show", cwd=project).stdout
    assert "critical path (*): fetch -> compile -> test" in ascii_


def test_critical_path_uses_the_last_run_durations(project: Path) -> None:
    write_pipeline(project, """
        steps:
          slow: {run: 'sleep 0.4'}
          fast: {run: 'true'}
          end: {run: 'true', needs: [slow, fast]}
    """)
    assert attest("run", cwd=project).returncode == 0
    shown = json.loads(attest("pipeline", "show", "-f", "json", cwd=project).stdout)
    assert shown["critical_path"] == ["slow", "end"]
    assert shown["weight_unit"] == "seconds"


def test_version_help_and_module_entry(project: Path) -> None:
    assert attest("--version", cwd=project).stdout == f"attest {__version__}\n"
    help_ = attest("--help", cwd=project)
    assert help_.returncode == 0
    for cmd in ("run", "init", "pipeline", "config", "cache", "keys", "verify", "history",
                "serve", "health", "monitoring", "analyze", "benchmark"):
        assert f"  {cmd} " in help_.stdout


def test_help_does_not_import_heavy_libraries(project: Path) -> None:
    code = ("import sys, runpy; sys.argv=['attest','--help']\n"
            "try:\n runpy.run_module('attest_cli', run_name='__main__')\n"
            "except SystemExit: pass\n"
            "heavy=[m for m in sys.modules if m.split('.')[0] in {'opentelemetry',"
            "'prometheus_client','boto3','botocore','redis','memray','pyinstrument',"
            "'cryptography','grpc','google','pydantic','rich','yaml','blake3'}]\n"
            "print(sorted({m.split('.')[0] for m in heavy}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=project, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


def test_a_command_imports_only_itself_and_help_lists_every_command(project: Path) -> None:
    """Importing every command's module and building each from its signature cost ~10 ms
    of each `attest run`; help still lists them all, in order, each with its example."""
    code = ("import sys\n"
            "from attest_cli.cli.entry import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('attest_cli.cli.')))\n")
    out = subprocess.run([sys.executable, "-c", code, "cache", "stats", "--help"],
                         capture_output=True, text=True, cwd=project, timeout=60)
    assert "attest cache stats -f json" in out.stdout  # its example epilog
    assert out.stdout.strip().splitlines()[-1] == str(
        ["attest_cli.cli.app", "attest_cli.cli.cache", "attest_cli.cli.common",
         "attest_cli.cli.entry", "attest_cli.cli.examples"]), out.stderr
    listed = attest("--help", cwd=project).stdout
    order = ["run", "init", "verify", "history", "serve", "health", "analyze", "completion",
             "pipeline", "config", "cache", "keys", "receipt", "monitoring", "benchmark"]
    assert [listed.index(f"\n  {name} ") for name in order] == sorted(
        listed.index(f"\n  {name} ") for name in order)
    assert "Examples:\n    attest run\n" in listed


def test_generated_completions_and_man_page_are_fresh(tmp_path: Path) -> None:
    from attest_cli.docgen import ROOT, generate

    for path, text in generate(tmp_path).items():
        committed = ROOT / path.relative_to(tmp_path)
        assert committed.read_text() == text, f"{committed} is stale: run `make docs`"


def test_bash_completion_offers_subcommands_options_and_config_keys(tmp_path: Path) -> None:
    from attest_cli.docgen import ROOT

    script = ROOT / "completions" / "attest.bash"

    def complete(line: str) -> list[str]:
        words = line.split(" ")
        prog = (f"source {script}; COMP_WORDS=({' '.join(repr(w) for w in words)}); "
                f"COMP_CWORD={len(words) - 1}; _attest; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
        out = subprocess.run(["bash", "-c", prog], capture_output=True, text=True, cwd=tmp_path)
        return out.stdout.split()

    assert "run" in complete("attest r") and "receipt" in complete("attest r")
    assert "--keep-going" in complete("attest run --keep")
    assert complete("attest run --profile ") == ["cpu", "memory"]
    assert complete("attest run --format ") == ["text", "json"]
    assert complete("attest verify --format ") == ["text", "json"]
    assert "markdown" in complete("attest benchmark compare --format ")
    assert "cache.backend" in complete("attest config set cache.b")
