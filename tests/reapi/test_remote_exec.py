"""``attest run --remote-exec`` end to end: a real BuildGrid, real bot processes, the real CLI.

Each bot (tests/reapi/bot.py) exports ``WORKER_ID`` to the commands it runs and logs every
lease it takes, so a test can tell where a step ran and count what the server scheduled.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.reapi.buildgrid_server import BuildGrid, grid, postgres, start_bot
from tests.support import attest, write_pipeline

__all__ = ["grid", "postgres"]  # fixtures

MAKE_OUT = """
    steps:
      make:
        run: cat src.txt > out.txt; echo "$WORKER_ID" >> out.txt
        inputs: [src.txt]
        outputs: [out.txt]
    """


def project(root: Path, grid: BuildGrid | None, pipeline: str = MAKE_OUT, *,
            endpoint: str | None = None, extra: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "src.txt").write_text("hello\n")
    url = endpoint or (grid.endpoint if grid else "")
    write_pipeline(root, pipeline)
    (root / ".attest").mkdir(exist_ok=True)
    (root / ".attest" / "config.yaml").write_text(f"execution:\n  endpoint: {url}\n{extra}")
    return root


def report(root: Path) -> dict[str, Any]:
    runs = sorted((root / ".attest" / "runs").glob("*.json"))
    data: dict[str, Any] = json.loads(runs[-1].read_text())
    return data


def step(data: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in data["steps"] if s["name"] == name)
    return found


def run(root: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return attest("run", "--remote-exec", *args, cwd=root, timeout=timeout,
                  env={"WORKER_ID": ""})


def test_step_runs_on_the_worker_and_its_output_comes_back(grid: BuildGrid,
                                                           tmp_path: Path) -> None:
    bot = start_bot(grid, "bot-1")
    root = project(tmp_path / "p", grid)
    done = run(root)
    assert done.returncode == 0, done.stderr + grid.log()[-2000:]
    assert (root / "out.txt").read_text() == "hello\nbot-1\n"
    made = step(report(root), "make")
    assert made["status"] == "success" and made["exit_code"] == 0
    remote = made["remote"]
    assert remote["backend"] == "reapi" and remote["worker"] == "bot-1"
    assert remote["endpoint"] == grid.endpoint and remote["cached_result"] is False
    assert remote["action_digest"].startswith("sha256:")
    assert remote["result_digest"].startswith("sha256:")
    assert remote["queued"] <= remote["worker_start"] <= remote["worker_completed"]
    assert made["started_at"] - 1 <= remote["queued"] <= made["finished_at"]
    assert [row[2] for row in bot.leases()] == ["bot-1"]
