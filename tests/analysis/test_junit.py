"""``attest run --junit FILE``: a JUnit XML report that CI systems ingest, validated against
the Jenkins xUnit plugin's JUnit schema (tests/data/junit-10.xsd, with lxml) and read back
with a JUnit consumer library (junitparser)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from junitparser import Failure, JUnitXml, Skipped
from lxml import etree

from tests.support import REPO, attest, wait_for, write_pipeline

SCHEMA = REPO / "tests" / "data" / "junit-10.xsd"

PIPELINE = r"""
version: "0.1"
name: shop
steps:
  compile:
    run: mkdir -p out && echo built > out/app.txt
    outputs: [out/app.txt]
  lint:
    run: echo lint ok
    cache: false
  unit:
    run: |
      for i in $(seq 1 200); do echo "line $i"; done
      printf 'colour \033[31mred\033[0m bell \007 token=%s\n' "$TOKEN"
      echo "last words"
      exit 3
    secrets: [TOKEN]
    needs: [compile]
  deploy:
    run: echo deploying
    needs: [unit]
  slow:
    run: sleep 30
    timeout: 0.5
"""


def validate(path: Path) -> etree._ElementTree:
    schema = etree.XMLSchema(etree.parse(str(SCHEMA)))
    doc = etree.parse(str(path))
    schema.assertValid(doc)
    return doc


def cases(path: Path) -> dict[str, object]:
    xml = JUnitXml.fromfile(str(path))
    return {case.name: case for suite in xml for case in suite}


def test_junit_report_validates_and_counts_every_outcome(project: Path) -> None:
    write_pipeline(project, PIPELINE)
    env = {"TOKEN": "hunter2-very-secret"}
    first = attest("run", "--keep-going", cwd=project, env=env)
    assert first.returncode == 1, first.stderr
    r = attest("run", "--keep-going", "--junit", "reports/junit.xml", cwd=project, env=env)
    assert r.returncode == 1, r.stderr
    path = project / "reports" / "junit.xml"
    validate(path)
    text = path.read_text(encoding="utf-8")
    assert "hunter2-very-secret" not in text and "token=***" in text

    xml = JUnitXml.fromfile(str(path))
    suites = list(xml)
    assert len(suites) == 1
    suite = suites[0]
    assert suite.name == "shop"
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (5, 2, 0, 1)
    by_name = cases(path)
    assert set(by_name) == {"compile", "lint", "unit", "deploy", "slow"}
    for case in by_name.values():
        assert case.classname == "shop"  # type: ignore[attr-defined]
        assert case.time >= 0  # type: ignore[attr-defined]

    compile_ = by_name["compile"]
    assert compile_.is_passed  # type: ignore[attr-defined]
    assert "cached" in (compile_.system_out or "")  # type: ignore[attr-defined]
    assert by_name["lint"].is_passed and not by_name["lint"].system_out  # type: ignore

    unit = by_name["unit"].result  # type: ignore[attr-defined]
    assert len(unit) == 1 and isinstance(unit[0], Failure)
    assert unit[0].message == "exit code 3"
    tail = unit[0].text
    assert tail.rstrip().endswith("last words")
    assert "line 200" in tail and "line 1\n" not in tail  # the tail, not the whole log
    assert len(tail.splitlines()) <= 50
    assert "\x1b" not in tail and "\x07" not in tail  # no characters XML 1.0 forbids

    slow = by_name["slow"].result  # type: ignore[attr-defined]
    assert isinstance(slow[0], Failure) and slow[0].type == "timeout"
    assert "timed out after 0.5s" in slow[0].message

    deploy = by_name["deploy"].result  # type: ignore[attr-defined]
    assert isinstance(deploy[0], Skipped) and "unit" in deploy[0].message
    assert by_name["slow"].time >= 0.4  # type: ignore[attr-defined]  # wall time, not 0


def test_junit_is_written_when_the_run_is_interrupted(project: Path) -> None:
    write_pipeline(project, """
        steps:
          hang: {run: 'echo started > started; sleep 60'}
          later: {run: 'true', needs: [hang]}
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTEST_")}
    env["XDG_CONFIG_HOME"] = str(project / ".xdg")
    proc = subprocess.Popen([sys.executable, "-m", "attest_cli", "run", "--junit", "j.xml"],
                            cwd=project, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert wait_for(lambda: (project / "started").exists(), 20)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    validate(project / "j.xml")
    by_name = cases(project / "j.xml")
    assert isinstance(by_name["hang"].result[0], Failure)  # type: ignore[attr-defined]
    assert isinstance(by_name["later"].result[0], Skipped)  # type: ignore[attr-defined]
    assert not list(project.glob("*.tmp*")) and not list(project.glob(".j.xml*"))


def test_junit_path_that_is_a_directory_is_a_usage_error_before_running(project: Path) -> None:
    write_pipeline(project, "steps:\n  a: {run: 'touch ran'}\n")
    (project / "out").mkdir()
    r = attest("run", "--junit", "out", cwd=project)
    assert r.returncode == 2 and "--junit" in r.stderr and "directory" in r.stderr
    assert not (project / "ran").exists()


def test_log_tail_is_bounded_in_lines_and_characters(tmp_path: Path) -> None:
    from attest_cli.engine.run_report import StepResult
    from attest_cli.render.junit import TAIL_CHARS, TAIL_LINES, log_tail

    log = tmp_path / "step.log"
    log.write_text("".join(f"{i:04d} " + "x" * 995 + "\n" for i in range(100)))
    tail = log_tail(StepResult(name="s", command="c", log_file=str(log)))
    assert (TAIL_LINES, TAIL_CHARS) == (50, 16 * 1024)
    assert len(tail) == TAIL_CHARS and tail.endswith("x\n")
    assert tail.splitlines()[-1].startswith("0099 ")
    short = tmp_path / "short.log"
    short.write_text("".join(f"l{i}\n" for i in range(80)))
    lines = log_tail(StepResult(name="s", command="c", log_file=str(short))).splitlines()
    assert lines == [f"l{i}" for i in range(30, 80)]


def test_control_characters_in_names_never_make_the_report_unreadable(tmp_path: Path) -> None:
    from attest_cli.engine.run_report import RunReport, StepResult
    from attest_cli.render.junit import write

    report = RunReport(run_id="r1", pipeline="p\x1b[2Jq", pipeline_file="a\x07.yaml",
                       started_at=0.0, finished_at=1.0, status="failure", hostname="h\x00")
    report.steps = [StepResult(name="s\x01", command="c", status="failure", reason="x\x02"),
                    StepResult(name="t", command="c", status="skipped", reason="y\x03")]
    path = write(report, tmp_path / "j.xml")
    validate(path)
    by_name = cases(path)
    assert set(by_name) == {"s\ufffd", "t"}
    assert by_name["t"].classname == "p\ufffd[2Jq"  # type: ignore[attr-defined]
