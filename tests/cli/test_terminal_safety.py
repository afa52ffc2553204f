"""What a terminal shows is what attest means: names are escaped, step output cannot move the
cursor, erase the screen or set the title (only colours pass), unless ``--raw-output``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from attest_cli.escaping import escape_control, filter_output
from tests.support import attest, run_in_pty, write_pipeline

FORGED = "x\n[OK] forged"
HOSTILE = r"printf 'a\033[2Jb\033]0;title\007c\033[1Ad\033[31mred\033[0m\n'"
BAD = ("\x1b[2J", "\x1b]0;title", "\x07", "\x1b[1A")


# -- the functions ---------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "shown"), [
    ("plain name.txt", "plain name.txt"),
    ("x\n[OK] forged", "x\\n[OK] forged"),
    ("a\rb\tc\x1b[31md\x7f\x00", "a\\rb\\tc\\x1b[31md\\x7f\\x00"),
    ("c1\x85\x9b", "c1\\x85\\x9b"),
    ("bidi\u202eevil\u2066", "bidi\\u202eevil\\u2066"),
    ("ünïcødé ✓", "ünïcødé ✓"),
])
def test_escape_control(raw: str, shown: str) -> None:
    assert escape_control(raw) == shown


@pytest.mark.parametrize(("raw", "colour", "shown"), [
    ("a\x1b[2Jb\x1b]0;title\x07c\x1b[1Ad\x1b[31mred\x1b[0m", True, "abcd\x1b[31mred\x1b[0m"),
    ("a\x1b[2Jb\x1b]0;title\x07c\x1b[1Ad\x1b[31mred\x1b[0m", False, "abcdred"),
    ("\x1b[1;38;5;196mbold\x1b[m", True, "\x1b[1;38;5;196mbold\x1b[m"),
    ("osc8 \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ end", True, "osc8 link end"),
    ("unterminated \x1b]0;title", True, "unterminated "),
    ("dcs \x1bPq#0\x1b\\ end", True, "dcs  end"),
    ("esc \x1bc\x1b7\x1b(B\x1b", True, "esc "),
    ("csi8 \x9b2J tab\tkept bs\x08 bel\x07", True, "csi8  tab\tkept bs bel"),
    ("progress 10%\rprogress 100%", True, "progress 100%"),
    ("private \x1b[?25l mode \x1b[>4;1m", True, "private  mode "),
])
def test_filter_output(raw: str, colour: bool, shown: str) -> None:
    assert filter_output(raw, colour=colour) == shown


# -- attest verify ---------------------------------------------------------------------------


def test_a_file_name_with_a_newline_cannot_forge_a_verification_line(project: Path) -> None:
    write_pipeline(project, """
        name: forge
        steps:
          build:
            run: mkdir -p out && printf data > "out/$(printf 'x\\n[OK] forged')"
            outputs: [out/]
        """)
    r = attest("run", "--sign", "--output", "receipt.json", cwd=project)
    assert r.returncode == 0, r.stderr
    (project / "out" / FORGED).write_text("tampered")
    v = attest("verify", "receipt.json", cwd=project)
    assert v.returncode == 1
    forged = [line for line in v.stdout.splitlines() if line.lstrip().startswith("[OK] forged")]
    assert forged == [], v.stdout
    fails = [line for line in v.stdout.splitlines() if "[FAIL]" in line]
    assert any("out/x\\n[OK] forged: content differs" in line for line in fails), v.stdout


# -- step output on the console --------------------------------------------------------------


def _hostile_project(project: Path, *, fail: bool = False) -> None:
    write_pipeline(project, f"""
        name: paint
        steps:
          paint:
            run: {HOSTILE}{"; exit 5" if fail else ""}
            cache: false
        """)


def test_step_output_keeps_colour_but_not_cursor_or_title_sequences(project: Path) -> None:
    _hostile_project(project)
    r = attest("run", cwd=project)
    assert r.returncode == 0, r.stderr
    assert "[paint] abcd\x1b[31mred\x1b[0m\n" in r.stderr
    assert [seq for seq in BAD if seq in r.stderr] == []
    logs = list((project / ".attest" / "logs").rglob("paint*"))
    assert len(logs) == 1  # the log on disk keeps the step's raw output
    assert "a\x1b[2Jb\x1b]0;title\x07c\x1b[1Ad\x1b[31mred" in logs[0].read_text()


def test_no_color_strips_the_steps_colours_too(project: Path) -> None:
    _hostile_project(project)
    r = attest("run", cwd=project, env={"NO_COLOR": "1"})
    assert r.returncode == 0, r.stderr
    assert "[paint] abcdred\n" in r.stderr


def test_the_failure_tail_of_a_quiet_run_is_filtered(project: Path) -> None:
    _hostile_project(project, fail=True)
    r = attest("run", "-q", cwd=project)
    assert r.returncode == 1
    assert "[paint] abcd\x1b[31mred\x1b[0m" in r.stderr
    assert [seq for seq in BAD if seq in r.stderr] == []


def test_raw_output_forwards_every_sequence(project: Path) -> None:
    _hostile_project(project)
    r = attest("run", "--raw-output", cwd=project)
    assert r.returncode == 0, r.stderr
    assert "[paint] a\x1b[2Jb\x1b]0;title\x07c\x1b[1Ad\x1b[31mred\x1b[0m\n" in r.stderr


def test_live_view_filters_step_output_and_escapes_markup(project: Path) -> None:
    write_pipeline(project, f"""
        name: live
        steps:
          paint:
            run: {HOSTILE}; echo '[bold]not markup[/] [/oops]'
            cache: false
        """)
    code, raw = run_in_pty(["run", "-v"], project)
    assert code == 0, raw
    # rich moves the cursor itself to redraw its live region: look for the step's sequence
    assert [seq for seq in ("\x1b[2J", "\x1b]0;title", "\x07", "c\x1b[1Ad") if seq in raw] == []
    assert "[bold]not markup[/] [/oops]" in raw
    assert "\x1b[31mred" in raw
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw)
    assert "abcdred" in screen


def test_github_actions_groups_filter_output_and_escape_names(project: Path) -> None:
    _hostile_project(project)
    r = attest("run", cwd=project, env={"GITHUB_ACTIONS": "true"})
    assert r.returncode == 0, r.stderr
    assert "abcd\x1b[31mred\x1b[0m\n::endgroup::" in r.stdout
    assert [seq for seq in BAD if seq in r.stdout + r.stderr] == []


# -- error messages --------------------------------------------------------------------------


def test_an_error_naming_a_hostile_file_is_one_escaped_line(project: Path) -> None:
    name = "p\n[OK] q.yaml"
    (project / name).write_text("name: x\nsteps:\n  a: {run: 'true'}\nbogus: 1\n")
    r = attest("run", "-p", name, cwd=project)
    assert r.returncode == 2
    assert r.stderr == "attest: error: p\\n[OK] q.yaml:4: bogus: unknown key\n"


def test_config_and_history_escape_what_they_print(project: Path) -> None:
    write_pipeline(project, 'name: "evil\\e[2J\\nname"\nsteps:\n  a: {run: "true"}\n')
    (project / ".attest").mkdir()
    (project / ".attest" / "config.yaml").write_text('cache:\n  prefix: "p\\e]0;t\\a/"\n')
    got = attest("config", "get", "cache.prefix", cwd=project)
    assert got.stdout == "p\\x1b]0;t\\x07/\n", got.stderr
    shown = attest("config", "show", cwd=project)
    assert "cache.prefix = p\\x1b]0;t\\x07/\n" in shown.stdout
    assert attest("run", cwd=project).returncode == 0
    history = attest("history", cwd=project)
    assert "evil\\x1b[2J\\nname" in history.stdout and "\x1b" not in history.stdout


def test_cache_explain_escapes_input_file_names(project: Path) -> None:
    write_pipeline(project, """
        name: cx
        steps:
          build:
            run: cat src/* > out.txt
            inputs: [src/]
            outputs: [out.txt]
        """)
    (project / "src").mkdir()
    (project / "src" / FORGED).write_text("a")
    assert attest("run", cwd=project).returncode == 0
    (project / "src" / FORGED).write_text("b")
    r = attest("cache", "explain", "build", cwd=project)
    assert r.returncode == 0, r.stderr
    assert [line for line in r.stdout.splitlines() if line.startswith("[OK]")] == []
    assert "  input:src/x\\n[OK] forged " in r.stdout
    assert "  - input src/x\\n[OK] forged changed" in r.stdout


def test_analyze_escapes_names_from_the_analysed_file(project: Path) -> None:
    import json

    write_pipeline(project, "name: an\nsteps:\n  a: {run: 'true'}\n")
    assert attest("run", "--report", "run.json", cwd=project).returncode == 0
    doc = json.loads((project / "run.json").read_text())
    doc["steps"][0]["name"] = "s\n[OK] forged\x1b[2J"
    doc["pipeline"] = "p\x1b]0;t\x07"
    (project / "run.json").write_text(json.dumps(doc))
    r = attest("analyze", "run.json", cwd=project)
    assert r.returncode == 0, r.stderr
    assert [line for line in r.stdout.splitlines() if line.startswith("[OK]")] == []
    assert "\x1b" not in r.stdout and "s\\n[OK] forged\\x1b[2J" in r.stdout
    assert "pipeline 'p\\x1b]0;t\\x07'" in r.stdout


def test_health_escapes_plugin_names_and_details(project: Path, tmp_path: Path) -> None:
    from tests.support import REPO

    site = tmp_path / "site"
    dist = site / "evil_check-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: evil-check\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[attest.health_checks]\nevil = evil_check:Check\n")
    (site / "evil_check.py").write_text(
        "from attest_cli.health.checks import HealthStatus\n"
        "class Check:\n"
        "    name = 'evil\\n[OK] forged'\n"
        "    async def check(self):\n"
        "        return HealthStatus.healthy('fine\\x1b[2J\\nhealthy  all good')\n")
    r = attest("health", cwd=project, env={"PYTHONPATH": f"{site}:{REPO}"})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [line for line in lines if line.lstrip().startswith(("[OK]", "healthy  all"))] == []
    assert any("evil\\n[OK] forged" in line and "fine\\x1b[2J\\nhealthy  all good" in line
               for line in lines), r.stdout
