"""npm packages the interop tests check attest's exports with (speedscope, @grafana/schema,
typescript), installed once into the repository's git-ignored ``.cache/npm/`` and reused.

The versions are pinned so a test's verdict changes only when we change them. Without
``npm`` the tests skip with a reason; under ``CI=true`` they fail (``.ci/run`` installs
``nodejs`` and ``npm``). A lock file serialises pytest-xdist workers installing the same set.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import subprocess
from pathlib import Path

from tests.support import REPO, require_binary

SPEEDSCOPE = "speedscope@1.25.0"
GRAFANA_SCHEMA = "@grafana/schema@13.2.3"
TYPESCRIPT = "typescript@5.9.3"


def npm_packages(*specs: str) -> Path:
    """The ``node_modules`` directory holding ``specs``, installing them on first use."""
    npm = require_binary("npm")
    require_binary("node")
    key = hashlib.sha256("\n".join(sorted(specs)).encode()).hexdigest()[:16]
    root = REPO / ".cache" / "npm" / key
    root.mkdir(parents=True, exist_ok=True)
    done = root / "installed.json"
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            (root / "package.json").write_text(json.dumps({"private": True}))
            out = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--no-save", "--ignore-scripts",
                 "--loglevel=error", *specs],
                cwd=root, capture_output=True, text=True, timeout=600)
            assert out.returncode == 0, f"npm install {' '.join(specs)}:\n{out.stderr}"
            done.write_text(json.dumps(sorted(specs)))
    return root / "node_modules"
