"""Everyday use: positional steps, consistent short flags, usage errors, completions, the man
page, and the critical path after a cached run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
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
    from attest_cli.render.figures import human_duration

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


# -- item 11: completions and the man page, shipped in the wheel -------------------------------
def _complete(cwd: Path, line: str) -> list[str]:
    """What the generated bash completion offers for ``line`` (the last word is completed)."""
    from attest_cli.docgen import DATA

    script = DATA / "completions" / "attest.bash"
    words = line.split(" ")
    prog = (f"source {script}; COMP_WORDS=({' '.join(repr(w) for w in words)}); "
            f"COMP_CWORD={len(words) - 1}; _attest; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
    out = subprocess.run(["bash", "-c", prog], capture_output=True, text=True, cwd=cwd,
                         timeout=30)
    assert out.stderr == "", out.stderr
    return out.stdout.split()


def test_bash_completes_step_names_from_the_pipeline_file_on_the_line(project: Path) -> None:
    write_pipeline(project, SELECTABLE)
    (project / "sub").mkdir()
    write_pipeline(project / "sub", """
        steps:
          "lint-all": {run: 'true'}
          package:
            run: 'true'
            needs: [lint-all]
    """)
    write_pipeline(project, "steps:\n  other_one: {run: 'true'}\n", name="ci.yaml")
    assert _complete(project, "attest run --step ") == ["fetch", "build", "test", "deploy"]
    assert _complete(project, "attest run --step b") == ["build"]
    assert _complete(project, "attest run b") == ["build"]  # positional step names
    assert _complete(project, "attest run build t") == ["test"]
    assert _complete(project, "attest cache explain d") == ["deploy"]
    assert _complete(project, "attest benchmark pipeline --step f") == ["fetch"]
    assert _complete(project, "attest -C sub run --step ") == ["lint-all", "package"]
    assert _complete(project, "attest run -p ci.yaml --step ") == ["other_one"]
    assert _complete(project, "attest run --pipeline ci.yaml o") == ["other_one"]
    assert "--keep-going" in _complete(project, "attest run --keep")  # options still complete
    assert _complete(project / "sub" / "..", "attest run -C nowhere --step ") == []


def test_bash_completes_config_values_and_shell_names(project: Path) -> None:
    assert _complete(project, "attest config set log_level ") == \
        ["trace", "debug", "info", "warn", "error"]
    assert _complete(project, "attest config set cache.enabled ") == ["true", "false"]
    assert _complete(project, "attest config set cache.backend r") == ["redis", "reapi"]
    assert "cache.backend" in _complete(project, "attest config set cache.b")
    assert _complete(project, "attest completion ") == ["bash", "zsh", "fish"]


def test_completion_scripts_start_no_interpreter() -> None:
    """A tab press must cost no Python start-up: step names are read with awk."""
    from attest_cli.docgen import DATA

    for name in ("attest.bash", "_attest", "attest.fish"):
        text = (DATA / "completions" / name).read_text()
        assert "python" not in text and "attest_cli" not in text
        assert "awk" in text


def test_completion_command_prints_the_shipped_scripts(project: Path) -> None:
    from attest_cli.docgen import DATA

    for shell, name in (("bash", "attest.bash"), ("zsh", "_attest"), ("fish", "attest.fish")):
        proc = attest("completion", shell, cwd=project)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == (DATA / "completions" / name).read_text()
    bad = attest("completion", "tcsh", cwd=project)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1
    assert bad.stderr.startswith("attest: error: ") and "'tcsh' is not one of" in bad.stderr
    # what the README tells bash users to do works: source the printed script, then complete
    write_pipeline(project, SELECTABLE)
    prog = ("source <(python -m attest_cli completion bash); COMP_WORDS=(attest run --step d); "
            "COMP_CWORD=3; _attest; echo \"${COMPREPLY[@]}\"")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTEST_")}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    done = subprocess.run(["bash", "-c", prog], capture_output=True, text=True, cwd=project,
                          env=env, timeout=60)
    assert done.stdout.strip() == "deploy", done.stderr


def test_wheel_ships_completions_and_man_page(tmp_path: Path) -> None:
    import shutil
    import zipfile

    from attest_cli.docgen import DATA, ROOT

    src = tmp_path / "src"
    shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(
        ".venv", ".git", "*.egg-info", "__pycache__", ".*_cache", ".attest", "build", "dist"))
    out = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                            str(out), str(src)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    (wheel,) = out.glob("attest_cli-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        for rel in ("completions/attest.bash", "completions/_attest", "completions/attest.fish",
                    "man/attest.1"):
            assert zf.read(f"attest_cli/data/{rel}") == (DATA / rel).read_bytes(), rel


def test_man_page_renders_without_warnings_and_loses_no_line(tmp_path: Path) -> None:
    from attest_cli.docgen import DATA
    from tests.support import require_binary

    require_binary("man")
    require_binary("groff")
    page = DATA / "man" / "attest.1"
    env = {**os.environ, "MANWIDTH": "200", "MAN_KEEP_FORMATTING": "0", "LC_ALL": "C.UTF-8"}
    proc = subprocess.run(["man", "--warnings", "-l", str(page)], capture_output=True,
                          text=True, env=env, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    strict = subprocess.run(["groff", "-man", "-ww", "-z", str(page)], capture_output=True,
                            text=True, timeout=60)
    assert strict.stderr == "", strict.stderr
    text = re.sub(r".\x08", "", proc.stdout)
    for line in (".attest/config.yaml", ".attest/runs/", "$XDG_CONFIG_HOME/attest/config.yaml",
                 "EXAMPLES", "attest run build test", "attest config set cache.backend redis",
                 "attest completion bash"):
        assert line in text, line


def test_every_command_help_ends_with_an_example(project: Path) -> None:
    from attest_cli.cli.examples import EXAMPLES
    from attest_cli.docgen import command_tree

    leaves = [" ".join(i.path) for i in command_tree() if not i.subcommands or not i.path]
    assert sorted(set(leaves) - set(EXAMPLES)) == []
    for path in ("config", "keys"):  # a group shows one example of each subcommand
        help_ = attest(*path.split(), "--help", cwd=project).stdout
        assert "Examples:" in help_ and f"attest {path} " in help_.split("Examples:")[1]
    for path in ("run", "config set", "pipeline show", "completion"):
        help_ = attest(*path.split(), "--help", cwd=project)
        assert help_.returncode == 0
        block = [x.strip() for x in help_.stdout.split("Examples:\n", 1)[1].splitlines()]
        for command, what in EXAMPLES[path]:
            assert block[block.index(command) + 1] == what


def test_zsh_and_fish_complete_step_names_and_config_values(project: Path) -> None:
    from attest_cli.docgen import DATA
    from tests.support import require_binary

    zsh, fish = require_binary("zsh"), require_binary("fish")
    write_pipeline(project, SELECTABLE)
    scripts = DATA / "completions"
    # outside a completion widget compadd is a builtin that refuses to run: stand-ins print
    # what would be offered (zsh filters by prefix itself, so every candidate is printed)
    stubs = ("compadd() { while [[ $1 != -- ]]; do shift; done; shift; print -l -- \"$@\"; }; "
             "_describe() { :; }; _files() { :; }; ")

    def z(*words: str) -> list[str]:
        prog = (stubs + f"source <(sed '$d' {scripts / '_attest'}); "
                f"words=({' '.join(repr(w) for w in words)}); CURRENT={len(words)}; _attest")
        out = subprocess.run([zsh, "-f", "-c", prog], capture_output=True, text=True,
                             cwd=project, timeout=30)
        assert out.stderr == "", out.stderr
        return out.stdout.split()

    assert z("attest", "run", "--step", "") == ["fetch", "build", "test", "deploy"]
    assert z("attest", "run", "build", "") == ["fetch", "build", "test", "deploy"]
    assert z("attest", "config", "set", "cache.mode", "") == ["read-write", "read-only"]

    def f(line: str) -> list[str]:
        out = subprocess.run([fish, "--no-config", "-c",
                              f"source {scripts / 'attest.fish'}; complete -C '{line}'"],
                             capture_output=True, text=True, cwd=project, timeout=30)
        assert out.stderr == "", out.stderr
        return sorted(x.split("\t")[0] for x in out.stdout.splitlines())

    assert f("attest run --step ") == ["build", "deploy", "fetch", "test"]
    assert f("attest run d") == ["deploy"]
    assert f("attest config set log_level ") == ["debug", "error", "info", "trace", "warn"]
    assert f("attest completion ") == ["bash", "fish", "zsh"]
