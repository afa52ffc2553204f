from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty project directory (steps run here; state goes to .attest/)."""
    root = tmp_path / "proj"
    root.mkdir()
    return root
