"""Commands write to the context's streams (``AppContext.stdout``/``stderr``), not to
``sys.stdout``: a caller (a test, an embedding program) captures output in process."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from attest_cli.cli.app import click_command
from attest_cli.context import AppContext


def _run(args: list[str]) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    click_command().main(args=args, prog_name="attest", standalone_mode=False,
                         obj=AppContext(stdout=out, stderr=err))
    return out.getvalue(), err.getvalue()


def test_analyze_history_and_cache_write_to_the_context_streams(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        run_report_data: dict[str, Any]) -> None:
    (tmp_path / "run.json").write_text(json.dumps(run_report_data))
    out, _ = _run(["-C", str(tmp_path), "analyze", "run.json", "--format", "json"])
    assert json.loads(out)["run"]["pipeline"] == "demo"
    out, _ = _run(["-C", str(tmp_path), "history", "--format", "json"])
    assert json.loads(out) == []
    out, _ = _run(["-C", str(tmp_path), "cache", "stats", "--format", "json"])
    assert [b["backend"] for b in json.loads(out)["backends"]] == ["local"]
    _, err = _run(["-C", str(tmp_path), "analyze", "run.json", "-o", "trace.json",
                   "-f", "chrome-trace"])
    assert err == "wrote trace.json\n"
    assert capsys.readouterr().out == ""
