"""attest's profile exports open in speedscope itself, and match its file-format schema.

speedscope's importer is a browser bundle (the npm package ships the built app), so the
test serves that app and the exported file from one loopback server, opens
``index.html#profileURL=...`` in headless Chromium, and reads what speedscope made of it:
the importer it chose (its console log), the page title and the per-thread totals it shows.
The speedscope-format CPU profile is also validated against ``file-format-schema.json``
from the same package (``jsonschema``).
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.npm_packages import SPEEDSCOPE, npm_packages
from tests.support import attest, require_binary, write_pipeline

PIPELINE = f"""
version: "0.1"
name: imported
steps:
  compile:
    run: {sys.executable} -c "print(sum(i * i for i in range(200000)))"
  slow:
    run: sleep 0.2
  package:
    run: echo packaged
    needs: [compile, slow]
"""


@pytest.fixture(scope="module")
def release() -> Path:
    return npm_packages(SPEEDSCOPE) / "speedscope" / "dist" / "release"


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("speedscope")
    write_pipeline(root, PIPELINE)
    out = attest("run", "--no-cache", "-j", "2", "--profile", "cpu", "--profile-output",
                 "cpu.prof", cwd=root)
    assert out.returncode == 0, out.stderr
    link = json.loads((root / "cpu.prof.attest.json").read_text())
    (root / "run.json").write_bytes(Path(link["run_report"]).read_bytes())
    return root


@pytest.fixture
def site(release: Path, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """speedscope's app and a folder for exports, served on one loopback origin."""
    www = tmp_path / "www"
    shutil.copytree(release, www)
    handler = functools.partial(QuietHandler, directory=str(www))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield www, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def open_in_speedscope(site: tuple[Path, str], export: Path,
                       tmp: Path) -> tuple[str, list[str]]:
    """The DOM speedscope shows for ``export``, and its console messages."""
    www, origin = site
    shutil.copy(export, www / export.name)
    url = f"{origin}/index.html#profileURL={origin}/{export.name}"
    out = subprocess.run(
        [require_binary("chromium"), "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--no-first-run",
         f"--user-data-dir={tmp / 'chromium'}", "--enable-logging=stderr", "--v=0",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
         "--virtual-time-budget=8000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120)
    console = re.findall(r':CONSOLE[^\]]*\] "(.*?)", source:', out.stderr)
    return out.stdout, console


def profile_totals(dom: str) -> dict[str, float]:
    """speedscope's profile list: each thread's name -> its total weight in milliseconds."""
    rows = re.findall(r"<span>([^<]+)</span></td><td[^>]*>([\d.]+)(ms|s|µs)</td>", dom)
    scale = {"ms": 1.0, "s": 1000.0, "µs": 0.001}
    return {name.strip(): float(v) * scale[unit] for name, v, unit in rows}


def test_chrome_trace_imports_in_speedscope_with_one_profile_per_slot(
        made: Path, site: tuple[Path, str], tmp_path: Path) -> None:
    report = json.loads((made / "run.json").read_text())
    trace = tmp_path / "run-trace.json"
    out = attest("analyze", "run.json", "-f", "chrome-trace", "-o", str(trace), cwd=made)
    assert out.returncode == 0, out.stderr
    dom, console = open_in_speedscope(site, trace, tmp_path)
    assert "Importing as Trace Event Format profile" in console, console
    assert not [m for m in console if "Unrecognized" in m or "Failed" in m], console
    assert "<title>run-trace.json - speedscope</title>" in dom
    totals = profile_totals(dom)
    run_lane = "attest: imported (pid 1), run (tid 0)"
    assert totals[run_lane] == pytest.approx(report["duration_seconds"] * 1000, abs=0.01)
    for slot in {s["slot"] for s in report["steps"]}:
        lane = f"attest: imported (pid 1), slot {slot} (tid {slot + 1})"
        # a lane's weight is the time its steps ran: the steps on one slot never overlap
        busy = sum(s["wall_seconds"] for s in report["steps"] if s["slot"] == slot)
        assert totals[lane] == pytest.approx(busy * 1000, abs=0.02)


def test_a_failed_runs_trace_with_never_started_steps_imports(
        site: tuple[Path, str], tmp_path: Path) -> None:
    """Steps that never started are instant ("i") events, which speedscope does not draw: the
    file still imports (speedscope refuses a trace of instant events only)."""
    root = tmp_path / "failed"
    root.mkdir()
    write_pipeline(root, """
        version: "0.1"
        name: broken
        steps:
          compile: {run: "exit 3"}
          package: {run: "echo packaged", needs: [compile]}
    """)
    assert attest("run", "--no-cache", cwd=root).returncode == 1
    (report_path,) = (root / ".attest" / "runs").glob("*.json")
    report = json.loads(report_path.read_text())
    assert {s["name"]: s["status"] for s in report["steps"]} == {
        "compile": "failure", "package": "skipped"}
    trace = tmp_path / "failed-trace.json"
    out = attest("analyze", str(report_path), "-f", "chrome-trace", "-o", str(trace), cwd=root)
    assert out.returncode == 0, out.stderr
    assert [e["ph"] for e in json.loads(trace.read_text())["traceEvents"]
            if e["name"] == "package"] == ["i"]
    dom, console = open_in_speedscope(site, trace, tmp_path)
    assert "Importing as Trace Event Format profile" in console, console
    totals = profile_totals(dom)
    assert totals["attest: broken (pid 1), run (tid 0)"] == pytest.approx(
        report["duration_seconds"] * 1000, abs=0.01)
    (compiled,) = [s for s in report["steps"] if s["name"] == "compile"]
    lane = f"attest: broken (pid 1), slot {compiled['slot']} (tid {compiled['slot'] + 1})"
    assert totals[lane] == pytest.approx(compiled["wall_seconds"] * 1000, abs=0.02)


def test_cpu_speedscope_export_imports_in_speedscope(
        made: Path, site: tuple[Path, str], tmp_path: Path) -> None:
    export = tmp_path / "cpu.speedscope.json"
    out = attest("analyze", "cpu.prof", "-f", "speedscope", "-o", str(export), cwd=made)
    assert out.returncode == 0, out.stderr
    doc = json.loads(export.read_text())
    dom, console = open_in_speedscope(site, export, tmp_path)
    assert "Importing as speedscope json file" in console, console
    assert f"<title>{doc['name']} - speedscope</title>" in dom.replace("&#39;", "'")


def test_cpu_speedscope_export_matches_the_file_format_schema(made: Path,
                                                               release: Path) -> None:
    import jsonschema

    schema = json.loads((release / "file-format-schema.json").read_text())
    out = attest("analyze", "cpu.prof", "-f", "speedscope", cwd=made)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in jsonschema.Draft7Validator(schema).iter_errors(doc)]
    assert errors == []
    names = {f["name"] for f in doc["shared"]["frames"]}
    assert {"run_command", "_run_step"} <= names
