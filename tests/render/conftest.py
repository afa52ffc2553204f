"""Values the renderer tests feed in."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def run_report_data() -> dict[str, Any]:
    """A run report as ``attest run`` writes it: two parallel steps and a skipped one."""
    return {
        "schema": "attest.run-report", "schema_version": 1, "run_id": "r1", "pipeline": "demo",
        "pipeline_file": "attest.yaml", "started_at": 100.0, "finished_at": 103.0,
        "status": "success", "parallel": 2, "steps": [
            {"name": "build", "command": "make", "status": "success", "wall_seconds": 2.0,
             "started_at": 100.5, "slot": 0},
            {"name": "lint", "command": "ruff", "status": "success", "wall_seconds": 1.0,
             "started_at": 100.5, "slot": 1},
            {"name": "late", "command": "true", "status": "skipped", "reason": "build failed"}]}
