"""``attest monitoring dashboard`` type-checks as a ``Dashboard`` of ``@grafana/schema``.

``@grafana/schema`` ships the dashboard model as TypeScript types (no JSON schema), so the
dashboard JSON is written as an object literal of type ``Dashboard`` and checked with
``tsc --strict``: TypeScript's excess-property check rejects keys the model does not have,
and missing required fields (a variable's ``current`` needs ``text`` and ``value``) fail too.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.npm_packages import GRAFANA_SCHEMA, TYPESCRIPT, npm_packages
from tests.support import attest, require_binary


def typecheck(dashboard: dict, tmp: Path) -> subprocess.CompletedProcess[str]:
    modules = npm_packages(GRAFANA_SCHEMA, TYPESCRIPT)
    (tmp / "node_modules").symlink_to(modules, target_is_directory=True)
    source = tmp / "dashboard.ts"
    source.write_text('import type { Dashboard } from "@grafana/schema";\n\n'
                      f"export const dashboard: Dashboard = {json.dumps(dashboard, indent=1)};\n")
    return subprocess.run(
        [require_binary("node"), str(modules / "typescript" / "bin" / "tsc"), "--noEmit",
         "--strict", "--target", "es2022", "--module", "esnext", "--moduleResolution",
         "bundler", "--skipLibCheck", str(source)],
        cwd=tmp, capture_output=True, text=True, timeout=300)


@pytest.fixture
def dashboard(project: Path) -> dict:
    out = attest("monitoring", "dashboard", cwd=project)
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def test_dashboard_is_a_grafana_schema_dashboard(dashboard: dict, tmp_path: Path) -> None:
    out = typecheck(dashboard, tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_type_check_rejects_what_grafana_schema_does_not_have(dashboard: dict,
                                                                  tmp_path: Path) -> None:
    """Control: an unknown key and a variable without a current value do fail the check."""
    dashboard["templating"]["list"][0]["current"] = {}
    dashboard["panels"][0]["no_such_key"] = 1
    out = typecheck(dashboard, tmp_path)
    assert out.returncode != 0
    assert "no_such_key" in out.stdout and "VariableOption" in out.stdout


def test_rate_panels_use_grafanas_rate_interval(dashboard: dict) -> None:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    windows = [w for e in exprs for w in re.findall(r"rate\([^\[]*\[([^\]]+)\]", e)]
    assert windows and set(windows) == {"$__rate_interval"}
