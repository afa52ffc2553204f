"""``attest run --profile memory --profile-steps``: memray captures of the steps' Python."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import attest, write_pipeline

pytest.importorskip("memray")
MiB = 1024 * 1024


def test_each_python_step_gets_a_capture_that_memray_and_analyze_read(tmp_path: Path) -> None:
    py = sys.executable
    (tmp_path / "alloc.py").write_text("def grow():\n    return bytearray(50 * 1024 * 1024)\n"
                                       "b = grow()\n")
    write_pipeline(tmp_path, f"""
        steps:
          big: {{run: '{py} alloc.py'}}
          shell: {{run: 'true'}}
    """)
    proc = attest("run", "--no-cache", "--profile", "memory", "--profile-steps",
                  "--profile-output", "attest.prof", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    link = json.loads((tmp_path / "attest.prof.attest.json").read_text())
    steps = link["profiler"]["steps"]
    run_id = link["run_id"]
    assert steps["directory"] == str(tmp_path / ".attest" / "profiles" / f"{run_id}.steps")
    (capture,) = steps["captures"]  # `true` starts no Python: no capture
    assert capture["step"] == "big" and capture["peak_memory_bytes"] >= 50 * MiB
    assert Path(capture["file"]).name == f"big.{capture['pid']}.memray"
    assert "step captures: 1" in proc.stderr and f"memray stats {capture['file']}" in proc.stderr
    stats = subprocess.run([py, "-m", "memray", "stats", "--json", "-o",
                            str(tmp_path / "stats.json"), capture["file"]],
                           capture_output=True, text=True, timeout=60)
    assert stats.returncode == 0, stats.stderr
    assert json.loads((tmp_path / "stats.json").read_text())["metadata"]["peak_memory"] >= 50 * MiB
    analyzed = attest("analyze", capture["file"], "--format", "json", cwd=tmp_path)
    assert analyzed.returncode == 0, analyzed.stderr
    memory = json.loads(analyzed.stdout)["memory"]
    assert memory["peak_bytes"] >= 50 * MiB
    assert any(a["file"].endswith("alloc.py") and a["line"] == 2 and a["bytes"] >= 50 * MiB
               for a in memory["top_allocators"])


def test_a_sitecustomize_already_on_the_path_still_runs(tmp_path: Path) -> None:
    own = tmp_path / "own"
    own.mkdir()
    (own / "sitecustomize.py").write_text(
        "import os, pathlib\n"
        "pathlib.Path(os.environ['ATTEST_STEP'] + '.marker').write_text('mine')\n")
    write_pipeline(tmp_path, f"steps:\n  py: {{run: '{sys.executable} -c pass'}}\n")
    proc = attest("run", "--no-cache", "--profile", "memory", "--profile-steps", cwd=tmp_path,
                  env={"PYTHONPATH": str(own)})
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "py.marker").read_text() == "mine"
    assert len(list((tmp_path / ".attest" / "profiles").glob("*.steps/py.*.memray"))) == 1


@pytest.mark.parametrize("flags", [["--profile-steps"], ["--profile", "cpu", "--profile-steps"]])
def test_profile_steps_needs_the_memory_profiler(tmp_path: Path, flags: list[str]) -> None:
    write_pipeline(tmp_path, "steps:\n  a: {run: 'touch ran'}\n")
    proc = attest("run", *flags, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("attest: error: --profile-steps")
    assert "--profile memory" in proc.stderr
    assert not (tmp_path / "ran").exists()
