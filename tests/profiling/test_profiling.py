"""``attest run --profile cpu|memory``: real pyinstrument and memray on real runs.

One profiled run per profiler (module-scoped) feeds most tests; the files are re-opened by
the profilers' own command lines, as a user would.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import attest, write_pipeline

PIPELINE = f"""
version: "0.1"
name: profiled
steps:
  compile:
    run: {sys.executable} -c "print(sum(i * i for i in range(300000)))"
  slow:
    run: sleep 0.2
  package:
    run: echo packaged
    needs: [compile, slow]
"""


def tool(name: str) -> str:
    """The venv's own command (pyinstrument, memray), beside the interpreter running tests."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is installed with attest's dependencies"
    return found


@pytest.fixture(scope="module")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("profiled")
    write_pipeline(root, PIPELINE)
    cpu = attest("run", "--no-cache", "--profile", "cpu", "--profile-output", "cpu.prof",
                 cwd=root)
    memory = attest("run", "--no-cache", "--profile", "memory", "--profile-output",
                    "memory.prof", cwd=root)
    return {"root": root, "cpu": cpu, "memory": memory}


def test_cpu_profile_is_a_pyinstrument_session_that_pyinstrument_loads(profiled) -> None:
    root = profiled["root"]
    assert profiled["cpu"].returncode == 0, profiled["cpu"].stderr
    out = subprocess.run([tool("pyinstrument"), "--load", str(root / "cpu.prof")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    # attest's own work, in the main thread and in the per-step worker threads
    assert "Scheduler.run" in out.stdout
    assert "run_command" in out.stdout
    assert "attest-step-compile" in out.stdout


def test_memory_capture_is_a_memray_file_that_memray_stats_reads(profiled) -> None:
    root = profiled["root"]
    assert profiled["memory"].returncode == 0, profiled["memory"].stderr
    assert (root / "memory.prof").read_bytes()[:4] == b"\x04\x22\x4d\x18"  # LZ4 frame
    out = subprocess.run([tool("memray"), "stats", str(root / "memory.prof")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Peak memory usage" in out.stdout
    assert not list(root.glob(".memory.prof.*"))  # no temporary capture left behind


@pytest.mark.parametrize("kind", ["cpu", "memory"])
def test_profile_is_linked_to_the_run_report_it_measured(profiled, kind: str) -> None:
    root = profiled["root"]
    link = json.loads((root / f"{kind}.prof.attest.json").read_text())
    assert link["schema"] == "attest.profile-link"
    assert link["kind"] == kind
    report_path = Path(link["run_report"])
    assert report_path.parent == (root / ".attest" / "runs").resolve()
    report = json.loads(report_path.read_text())
    assert report["run_id"] == link["run_id"] == link["run"]["run_id"]
    assert [s["name"] for s in link["run"]["steps"]] == ["compile", "slow", "package"]
    for step in link["run"]["steps"]:
        assert step["wall_seconds"] > 0
        assert step["status"] == "success"
    assert link["run"]["steps"][2]["needs"] == ["compile", "slow"]
    assert link["attest_process"]["max_rss_bytes"] > 0
    assert link["overhead_seconds"] > 0


@pytest.mark.parametrize("kind", ["cpu", "memory"])
def test_the_end_of_a_profiled_run_names_the_file_and_the_overhead(profiled, kind) -> None:
    err = profiled[kind].stderr
    assert f"{kind} profile (" in err
    assert f"{kind}.prof" in err
    assert "profiler overhead" in err
    assert "attest analyze" in err
    assert "Pipeline execution completed" in err or "success" in err


def test_default_profile_name_is_under_the_state_dir_and_printed(project: Path) -> None:
    write_pipeline(project, 'version: "0.1"\nname: p\nsteps:\n  a:\n    run: echo a\n')
    out = attest("run", "--profile", "cpu", cwd=project)
    assert out.returncode == 0, out.stderr
    run_id = json.loads(next((project / ".attest" / "runs").glob("*.json")).read_text())["run_id"]
    expected = Path(".attest") / "profiles" / f"{run_id}.cpu.prof"
    assert (project / expected).is_file()
    assert str(expected) in out.stderr
    assert not list((project / ".attest" / "profiles").glob(".*"))  # no temp files


def test_profiling_keeps_the_failing_runs_exit_code_and_still_writes(project: Path) -> None:
    write_pipeline(project, 'version: "0.1"\nname: p\nsteps:\n  bad:\n    run: exit 3\n'
                            '  after:\n    run: echo never\n    needs: [bad]\n')
    plain = attest("run", cwd=project)
    for kind in ("cpu", "memory"):
        out = attest("run", "--profile", kind, "--profile-output", f"{kind}.prof", cwd=project)
        assert out.returncode == plain.returncode == 1
        assert "failed" in out.stderr
        link = json.loads((project / f"{kind}.prof.attest.json").read_text())
        assert link["run"]["status"] == "failure"
        assert [s["status"] for s in link["run"]["steps"]] == ["failure", "skipped"]


def test_native_without_a_profile_is_a_usage_error(project: Path) -> None:
    write_pipeline(project, PIPELINE)
    out = attest("run", "--native", cwd=project)
    assert out.returncode == 2
    assert "--native" in out.stderr and "--profile memory" in out.stderr
    assert not (project / ".attest" / "runs").exists()


def test_native_frames_need_the_memory_profiler(project: Path) -> None:
    write_pipeline(project, 'version: "0.1"\nname: p\nsteps:\n  a:\n    run: echo a\n')
    out = attest("run", "--profile", "cpu", "--native", cwd=project)
    assert out.returncode == 2
    assert "--native" in out.stderr and "--profile memory" in out.stderr
    assert not (project / ".attest" / "runs").exists()  # nothing ran


def test_a_directory_as_profile_output_is_refused_before_running(project: Path) -> None:
    write_pipeline(project, 'version: "0.1"\nname: p\nsteps:\n  a:\n    run: echo a\n')
    (project / "out").mkdir()
    out = attest("run", "--profile", "memory", "--profile-output", "out", cwd=project)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1] == \
        "attest: error: --profile-output out: is a directory"
    assert "Traceback" not in out.stderr
    assert not (project / ".attest" / "runs").exists()


def test_native_memory_profile_records_native_frames(project: Path) -> None:
    write_pipeline(project, 'version: "0.1"\nname: p\nsteps:\n  a:\n    run: echo a\n')
    out = attest("run", "--profile", "memory", "--native", "--profile-output", "m.prof",
                 cwd=project)
    assert out.returncode == 0, out.stderr
    stats = subprocess.run([tool("memray"), "stats", "--json", "-o", str(project / "s.json"),
                            str(project / "m.prof")], capture_output=True, text=True, timeout=60)
    assert stats.returncode == 0, stats.stderr
    assert json.loads((project / "s.json").read_text())["metadata"]["has_native_traces"] is True


def test_a_plain_run_imports_neither_profiler(project: Path) -> None:
    write_pipeline(project, 'version: "0.1"\nname: p\nsteps:\n  a:\n    run: echo a\n')
    code = ("import sys, runpy; sys.argv=['attest','run','-q']\n"
            "try:\n runpy.run_module('attest_cli', run_name='__main__')\n"
            "except SystemExit as e: assert e.code == 0, e.code\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'memray','pyinstrument'}))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_sampling_interval_comes_from_profiling_interval(project: Path) -> None:
    write_pipeline(project, 'version: "0.1"\nname: p\nsteps:\n  a:\n    run: echo a\n')
    out = attest("run", "--profile", "cpu", "--profile-output", "cpu.prof", cwd=project,
                 env={"ATTEST_PROFILING__INTERVAL": "0.005"})
    assert out.returncode == 0, out.stderr
    session = json.loads((project / "cpu.prof").read_text())
    assert session["min_interval"] == pytest.approx(0.005)
    link = json.loads((project / "cpu.prof.attest.json").read_text())
    assert link["profiler"]["interval"] == pytest.approx(0.005)


def test_profiling_native_config_applies_to_memory_only(project: Path) -> None:
    write_pipeline(project, 'version: "0.1"\nname: p\nsteps:\n  a:\n    run: echo a\n')
    env = {"ATTEST_PROFILING__NATIVE": "true"}
    cpu = attest("run", "--profile", "cpu", "--profile-output", "c.prof", cwd=project, env=env)
    assert cpu.returncode == 0, cpu.stderr
    mem = attest("run", "--profile", "memory", "--profile-output", "m.prof", cwd=project,
                 env=env)
    assert mem.returncode == 0, mem.stderr
    link = json.loads((project / "m.prof.attest.json").read_text())
    assert link["profiler"]["native"] is True


def test_an_interrupted_profiled_run_exits_130_and_keeps_its_profile(project: Path) -> None:
    # the step prints first: its log file appears on its first line of output
    write_pipeline(project, 'version: "0.1"\nname: p\nsteps:\n  long:\n'
                            '    run: echo started; sleep 30\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTEST_")}
    env["XDG_CONFIG_HOME"] = str(project / ".xdg")
    proc = subprocess.Popen([sys.executable, "-m", "attest_cli", "run", "--profile", "cpu",
                             "--profile-output", "cpu.prof"], cwd=project, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    logs = project / ".attest" / "logs"
    deadline = time.monotonic() + 30
    while not list(logs.glob("*/long.log")) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    link = json.loads((project / "cpu.prof.attest.json").read_text())
    assert link["run"]["status"] == "interrupted"
    assert json.loads((project / "cpu.prof").read_text())["sample_count"] > 0


def test_memory_profiling_inside_memray_run_is_one_clear_error(project: Path) -> None:
    write_pipeline(project, 'version: "0.1"\nname: p\nsteps:\n  a:\n    run: echo a\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTEST_")}
    env["XDG_CONFIG_HOME"] = str(project / ".xdg")
    out = subprocess.run([tool("memray"), "run", "-q", "-o", "outer.bin", "-m", "attest_cli",
                          "run", "--profile", "memory", "--profile-output", "inner.prof"],
                         cwd=project, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith(
        "attest: error: --profile memory: memray ")
    assert "could not start" in out.stderr
    assert not list(project.glob("*inner.prof*"))
    assert not (project / ".attest" / "runs").exists()
