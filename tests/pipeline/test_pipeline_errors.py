"""Every kind of bad pipeline file: one line naming file, line and key; exit 2; no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import attest, write_pipeline

CASES = [
    ("yaml_syntax", "steps:\n  a:\n    run: [unclosed\n", "attest.yaml:4", "YAML syntax error"),
    ("unknown_step_key", "steps:\n  a:\n    run: 'true'\n    neds: [b]\n",
     "attest.yaml:4: steps.a.neds", "did you mean 'needs'?"),
    ("unknown_top_key", "stepz:\n  a: {run: 'true'}\n", "attest.yaml:1: stepz",
     "did you mean 'steps'?"),
    ("wrong_type_timeout", "steps:\n  a:\n    run: 'true'\n    timeout: soon\n",
     "attest.yaml:4: steps.a.timeout", "expected a duration"),
    ("wrong_type_cache", "steps:\n  a:\n    run: 'true'\n    cache: maybe\n",
     "attest.yaml:4: steps.a.cache", "expected true or false"),
    ("wrong_type_needs", "steps:\n  a:\n    run: 'true'\n    needs: {b: 1}\n",
     "attest.yaml:4: steps.a.needs", "expected a list of strings"),
    ("unknown_needs", "steps:\n  build:\n    run: 'true'\n  test:\n    run: 'true'\n"
     "    needs: [biuld]\n", "attest.yaml:6: steps.test.needs", "did you mean 'build'?"),
    ("cycle", "steps:\n  a:\n    run: 'true'\n    needs: [c]\n  b:\n    run: 'true'\n"
     "    needs: [a]\n  c:\n    run: 'true'\n    needs: [b]\n", "attest.yaml:4: steps.a.needs",
     "dependency cycle: a -> c -> b -> a"),
    ("missing_run", "steps:\n  a:\n    needs: []\n", "attest.yaml:2: steps.a",
     "missing 'run'"),
    ("empty_file", "", "attest.yaml", "the file is empty"),
    ("not_a_mapping", "- just\n- a list\n", "attest.yaml:1", "expected a mapping"),
    ("duplicate_key", "steps:\n  a: {run: 'true'}\n  a: {run: 'false'}\n", "attest.yaml:3",
     "duplicate key 'a'"),
    ("bad_env_name", "env:\n  1BAD: x\nsteps:\n  a: {run: 'true'}\n", "attest.yaml:2: env.1BAD",
     "not a valid variable name"),
    ("bad_config_section", "cache:\n  backnd: redis\nsteps:\n  a: {run: 'true'}\n",
     "attest.yaml:2: cache.backnd", "did you mean 'cache.backend'?"),
    ("bad_config_value", "cache:\n  backend: floppy\nsteps:\n  a: {run: 'true'}\n",
     "attest.yaml:2: cache.backend", "expected one of local, redis, s3"),
    ("mistyped_tag", "steps:\n  a:\n    run: 'true'\n    timeout: !!int soon\n",
     "attest.yaml:4", "bad value: 'soon' cannot be read as int"),
    ("collection_tag_on_scalar", "env:\n  A: !!map x\nsteps:\n  a: {run: 'true'}\n",
     "attest.yaml:2", "bad value: 'x' is a scalar, and !!map tags a collection"),
    ("alias_bomb", "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
     "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
     "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nsteps: {x: {run: 'true'}}\n",
     "attest.yaml", "alias bomb"),
]


@pytest.mark.parametrize(("name", "text", "where", "what"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("command", [["run"], ["pipeline", "validate"]])
def test_bad_pipeline_is_one_located_line(project: Path, name: str, text: str, where: str,
                                          what: str, command: list[str]) -> None:
    (project / "attest.yaml").write_text(text)
    proc = attest(*command, cwd=project)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"attest: error: {where}"), lines[0]
    assert what in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (project / ".attest" / "runs").exists()  # nothing ran


def test_traceback_only_with_verbose(project: Path) -> None:
    write_pipeline(project, "steps:\n  a:\n    run: 'true'\n    neds: [b]\n")
    quiet = attest("run", cwd=project)
    loud = attest("-v", "run", cwd=project)
    assert "Traceback" not in quiet.stderr
    assert "Traceback" in loud.stderr and loud.returncode == 2


def test_missing_pipeline_file_names_it(project: Path) -> None:
    proc = attest("run", "-p", "nope.yaml", cwd=project)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("attest: error: nope.yaml: no such file (create one with "
                                   "'attest init', or name one with -p)")


def test_unknown_step_selection_hints(project: Path) -> None:
    write_pipeline(project, "steps:\n  build: {run: 'true'}\n")
    proc = attest("run", "--step", "biuld", cwd=project)
    assert proc.returncode == 2
    assert "--step biuld: no such step" in proc.stderr and "did you mean 'build'?" in proc.stderr


def test_bad_flag_value_is_usage_error(project: Path) -> None:
    write_pipeline(project, "steps:\n  build: {run: 'true'}\n")
    proc = attest("run", "--log-level", "loud", cwd=project)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "loud" in proc.stderr


def test_a_pipeline_and_a_config_are_bounded_too(tmp_path: Path) -> None:
    (tmp_path / "attest.yaml").write_text('version: "0.1"\nname: p\nsteps:\n  a:\n'
                                          "    run: touch ran\n")
    with (tmp_path / "big.yaml").open("w") as fh:
        fh.write("x:\n" + "- 1\n" * 1_100_000)
    r = attest("run", "-p", "big.yaml", cwd=tmp_path)
    assert r.returncode == 2 and "big.yaml:" in r.stderr and "values" in r.stderr, r.stderr
    r = attest("run", cwd=tmp_path, env={"ATTEST_CONFIG": str(tmp_path / "big.yaml")})
    assert r.returncode == 2 and "big.yaml:" in r.stderr and "values" in r.stderr, r.stderr
    assert not (tmp_path / "ran").exists()


# Bad input is exit 2 before anything runs (issue 12, item 13): docs/security.md

SIDE_EFFECT = 'version: "0.1"\nname: p\nsteps:\n  a:\n    run: touch ran\n'


def _refused_before_running(root: Path, *args: str, words: tuple[str, ...],
                            env: dict[str, str] | None = None) -> None:
    r = attest("run", "--no-cache", *args, cwd=root, env=env, timeout=20)
    assert r.returncode == 2, (args, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    if lines[0].startswith("Usage:"):  # Click's own usage error: usage, hint, error
        lines = lines[-1:]
    assert len(lines) == 1 and "Traceback" not in r.stderr, lines
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert not (root / "ran").exists(), f"a step ran despite {args}"


def test_non_regular_pipeline_and_config_files_are_refused_without_blocking(
        tmp_path: Path) -> None:
    import os

    (tmp_path / "attest.yaml").write_text(SIDE_EFFECT)
    os.mkfifo(tmp_path / "fifo")
    _refused_before_running(tmp_path, "-p", "/dev/zero", words=("/dev/zero",
                                                                "character device"))
    _refused_before_running(tmp_path, "-p", "fifo", words=("fifo", "FIFO"))
    _refused_before_running(tmp_path, env={"ATTEST_CONFIG": "/dev/zero"},
                            words=("/dev/zero", "character device"))
    _refused_before_running(tmp_path, env={"ATTEST_CONFIG": str(tmp_path / "fifo")},
                            words=("fifo", "FIFO"))


@pytest.mark.parametrize(("args", "words"), [
    (("-j", "1e20"), ("--parallel",)),
    (("-j", "99999999999999999999"), ("--parallel", "1024")),
    (("--timeout", "nan"), ("--timeout", "nan")),
    (("--timeout", "1e300"), ("--timeout", "100 years")),
    (("--sign", "--expires-in", "99999999999d"), ("--expires-in", "100 years")),
    (("--report", "/"), ("--report /: is a directory",)),
    (("--metrics-file", "missing/m.prom"), ("--metrics-file", "does not exist")),
])
def test_bad_numbers_and_targets_on_the_command_line_stop_before_any_step(
        tmp_path: Path, args: tuple[str, ...], words: tuple[str, ...]) -> None:
    (tmp_path / "attest.yaml").write_text(SIDE_EFFECT)
    _refused_before_running(tmp_path, *args, words=words)
    assert not (tmp_path / "missing").exists()


def test_nan_and_huge_numbers_in_pipeline_and_config_name_file_line_and_key(
        tmp_path: Path) -> None:
    (tmp_path / "attest.yaml").write_text(SIDE_EFFECT + "    timeout: .nan\n")
    _refused_before_running(tmp_path, words=("attest.yaml:6: steps.a.timeout", "nan"))
    (tmp_path / "attest.yaml").write_text(SIDE_EFFECT)
    for text, words in (("tracing:\n  sampling:\n    rate: .nan\n",
                         ("c.yaml:3: tracing.sampling.rate", "nan")),
                        ("cache:\n  timeout: .inf\n", ("c.yaml:2: cache.timeout", "inf")),
                        ("parallel: 100000000000000000000\n", ("c.yaml:1: parallel", "1024")),
                        ("cache:\n  max_size: 99999999999999999999TB\n",
                         ("c.yaml:2: cache.max_size",))):
        (tmp_path / "c.yaml").write_text(text)
        _refused_before_running(tmp_path, env={"ATTEST_CONFIG": str(tmp_path / "c.yaml")},
                                words=words)
