"""``attest analyze``: every format for every kind it claims, on files from real runs.

HTML reports are opened in headless Chromium with name resolution disabled and every
proxied connection recorded by a loopback listener: the page must render the step and
function names and must not try to reach any network.
"""

from __future__ import annotations

import html
import itertools
import json
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.support import attest, free_port, require_binary, write_pipeline

PIPELINE = f"""
version: "0.1"
name: analyzed
steps:
  compile:
    run: {sys.executable} -c "print(sum(i * i for i in range(300000)))"
  slow:
    run: sleep 0.2
  package:
    run: echo packaged
    needs: [compile, slow]
  docs:
    run: echo docs
"""
STEPS = {"compile", "slow", "package", "docs"}


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One project with a CPU profile, a memory capture and run reports of real runs."""
    root = tmp_path_factory.mktemp("analyzed")
    write_pipeline(root, PIPELINE)
    for kind in ("cpu", "memory"):
        out = attest("run", "--no-cache", "-j", "2", "--profile", kind, "--profile-output",
                     f"{kind}.prof", cwd=root)
        assert out.returncode == 0, out.stderr
    link = json.loads((root / "cpu.prof.attest.json").read_text())
    (root / "run.json").write_bytes(Path(link["run_report"]).read_bytes())
    return root


def analyze(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return attest("analyze", *args, cwd=root)


def as_json(root: Path, name: str) -> dict:
    out = analyze(root, name, "--format", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


# -- what each file is, and the answers ---------------------------------------------------

def test_run_report_answers_slowest_steps_and_critical_path(made: Path) -> None:
    report = json.loads((made / "run.json").read_text())
    data = as_json(made, "run.json")
    assert data["schema"] == "attest.analysis" and data["kind"] == "run"
    run = data["run"]
    assert run["run_id"] == report["run_id"]
    walls = {s["name"]: s["wall_seconds"] for s in report["steps"]}
    assert {r["name"] for r in run["steps"]} == STEPS
    assert [r["name"] for r in run["steps"]] == sorted(walls, key=lambda n: (-walls[n], n))
    first = max(("compile", "slow"), key=lambda n: walls[n])
    assert run["critical_path"] == [first, "package"]
    assert run["critical_seconds"] == pytest.approx(walls[first] + walls["package"], abs=1e-5)
    total = sum(walls.values())
    for row in run["steps"]:
        assert row["share"] == pytest.approx(walls[row["name"]] / total, abs=1e-4)
        assert row["critical"] == (row["name"] in (first, "package"))
    assert data["cpu"] is None and data["memory"] is None
    first = min(s["started_at"] for s in report["steps"])
    last = max(s["finished_at"] for s in report["steps"])
    assert run["before_first_step"] == pytest.approx(first - report["started_at"], abs=1e-5)
    assert run["after_last_step"] == pytest.approx(report["finished_at"] - last, abs=1e-5)


def test_cpu_profile_answers_steps_and_hottest_functions(made: Path) -> None:
    data = as_json(made, "cpu.prof")
    assert data["kind"] == "cpu" and data["tool"].startswith("pyinstrument")
    assert {r["name"] for r in data["run"]["steps"]} == STEPS
    cpu = data["cpu"]
    assert cpu["samples"] > 0 and cpu["hottest"]
    assert "MainThread" in cpu["threads"]
    assert any(t.startswith("attest-step-") for t in cpu["threads"])
    shares = [f["share"] for f in cpu["hottest"]]
    assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1.0001
    assert data["profiler"]["attest_process"]["cpu_user_seconds"] > 0
    work = {w["step"]: w for w in cpu["per_step"]}
    assert "slow" in work and set(work) <= STEPS  # each step's worker thread was sampled
    for w in work.values():
        assert 0 <= w["attest_seconds"] <= w["thread_seconds"]
    # the slow step's thread mostly waited for `sleep`: that is not attest's own work
    assert work["slow"]["attest_seconds"] < work["slow"]["thread_seconds"]
    text = analyze(made, "cpu.prof")
    assert text.returncode == 0
    assert "critical path:" in text.stdout
    assert "attest's own work per step" in text.stdout
    assert cpu["hottest"][0]["function"] in text.stdout
    for step in STEPS:
        assert step in text.stdout


def test_memory_capture_answers_peak_and_top_allocators(made: Path) -> None:
    data = as_json(made, "memory.prof")
    mem = data["memory"]
    assert data["kind"] == "memory" and data["tool"].startswith("memray")
    assert mem["peak_bytes"] > 0 and mem["total_allocations"] > 0
    assert mem["top_allocators"]
    held = [a["bytes"] for a in mem["top_allocators"]]
    assert held == sorted(held, reverse=True)
    assert sum(held) <= mem["peak_bytes"]
    assert all(a["share"] == pytest.approx(a["bytes"] / mem["peak_bytes"], abs=1e-4)
               for a in mem["top_allocators"])
    assert {r["name"] for r in data["run"]["steps"]} == STEPS
    text = analyze(made, "memory.prof").stdout
    assert "peak memory:" in text and mem["top_allocators"][0]["function"] in text


def test_kind_is_detected_by_content_not_name(made: Path) -> None:
    (made / "renamed.json").write_bytes((made / "memory.prof").read_bytes())
    (made / "renamed.prof").write_bytes((made / "run.json").read_bytes())
    assert as_json(made, "renamed.json")["kind"] == "memory"
    assert as_json(made, "renamed.prof")["kind"] == "run"


def test_speedscope_export(made: Path) -> None:
    out = analyze(made, "cpu.prof", "--format", "speedscope")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    names = {f["name"] for f in doc["shared"]["frames"]}
    assert {"run_command", "_run_step", "MainThread"} <= names


def test_memray_stats_format(made: Path) -> None:
    out = analyze(made, "memory.prof", "--format", "stats")
    assert out.returncode == 0, out.stderr
    assert "Peak memory usage" in out.stdout and "Total allocations" in out.stdout


@pytest.mark.parametrize("fmt", ["flamegraph", "table"])
def test_memray_html_formats_are_offline(made: Path, fmt: str) -> None:
    out = analyze(made, "memory.prof", "--format", fmt, "--output", f"{fmt}.html")
    assert out.returncode == 0, out.stderr
    page = (made / f"{fmt}.html").read_text()
    assert "<html" in page and "memray" in page
    assert remote_references(page) == []


def test_chrome_trace_has_one_track_per_parallel_slot(made: Path) -> None:
    report = json.loads((made / "run.json").read_text())
    out = analyze(made, "run.json", "--format", "chrome-trace", "--output", "trace.json")
    assert out.returncode == 0, out.stderr
    events = json.loads((made / "trace.json").read_text())["traceEvents"]
    steps = {e["name"]: e for e in events if e.get("cat") == "step"}
    assert set(steps) == STEPS
    origin = report["started_at"]
    for s in report["steps"]:
        e = steps[s["name"]]
        assert e["ph"] == "X" and e["tid"] == s["slot"] + 1
        assert e["ts"] == pytest.approx((s["started_at"] - origin) * 1e6, abs=1)
        assert e["dur"] == pytest.approx(s["wall_seconds"] * 1e6, abs=1)
        assert e["args"]["max_rss_bytes"] == s["max_rss_bytes"]
    lanes = {e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert lanes == {"run"} | {f"slot {s['slot']}" for s in report["steps"]}
    # steps that overlapped in time never share a track
    spans = sorted((e["tid"], e["ts"], e["ts"] + e["dur"]) for e in steps.values())
    for (t1, _, end1), (t2, start2, _) in itertools.pairwise(spans):
        assert t1 != t2 or start2 >= end1 - 1


def test_a_format_that_does_not_apply_names_those_that_do(made: Path) -> None:
    out = analyze(made, "run.json", "--format", "flamegraph")
    assert out.returncode == 2
    assert out.stderr.strip() == ("attest: error: --format flamegraph does not apply to an "
                                  "attest run report; use one of: text, json, html, "
                                  "chrome-trace")


def test_a_kind_without_renderers_is_not_available() -> None:
    from attest_cli.errors import NotAvailableError
    from attest_cli.render import registry

    with pytest.raises(NotAvailableError, match="not available yet"):
        registry.for_kind("no-such-kind", "a mystery file").renderer("text")


# -- bad files ----------------------------------------------------------------------------

def _bad_files(made: Path) -> dict[str, bytes | None]:
    cpu = (made / "cpu.prof").read_bytes()
    mem = (made / "memory.prof").read_bytes()
    session = json.loads(cpu)
    session["frame_records"] = "nonsense"
    late = json.loads(cpu)
    late["frame_records"] = [*late["frame_records"][:3], [42, "x"]]
    return {
        "empty.prof": b"",
        "random.bin": bytes(range(256)) * 4,
        "truncated-cpu.prof": cpu[: len(cpu) // 2],
        "truncated-memory.prof": mem[: len(mem) // 2],
        "corrupt-memory.prof": mem[:8] + b"\x00" * 64,
        "other.json": b'{"hello": "world"}',
        "bad-session.prof": json.dumps(session).encode(),
        "bad-late-record.prof": json.dumps(late).encode(),
        "old-report.json": json.dumps({"schema": "attest.run-report",
                                       "schema_version": 99}).encode(),
        "cpu.prof.attest.json": None,  # the link file itself
        "missing.prof": None,
    }


def test_unusable_files_get_one_line_naming_the_file_and_exit_2(made: Path) -> None:
    bad = made / "bad"
    bad.mkdir(exist_ok=True)
    for name, content in _bad_files(made).items():
        if content is not None:
            (bad / name).write_bytes(content)
    (bad / "cpu.prof.attest.json").write_bytes((made / "cpu.prof.attest.json").read_bytes())
    (bad / "a-directory").mkdir(exist_ok=True)
    for name in [*_bad_files(made), "a-directory"]:
        out = attest("analyze", name, "--format", "json", cwd=bad)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2, (name, out.stderr)
        assert len(lines) == 1, (name, out.stderr)
        assert lines[0].startswith(f"attest: error: {bad / name}"), (name, lines[0])
        assert out.stdout == ""
    expected = attest("analyze", "other.json", cwd=bad).stderr
    assert "expected a pyinstrument CPU profile" in expected


# -- HTML in a real browser, offline ---------------------------------------------------------

def remote_references(page: str) -> list[str]:
    """Resources a browser would fetch from a network (links to docs are not fetched)."""
    found: list[str] = []
    for doc in dict.fromkeys((page, html.unescape(page))):
        found += re.findall(r"<(?:script|link|img|iframe|source|video|audio)\b[^>]*?"
                            r"(?:src|href)\s*=\s*[\"']?(https?://[^\"'\s>]+)", doc, re.I)
        found += re.findall(r"url\(\s*[\"']?(https?://[^)\"']+)", doc, re.I)
        found += re.findall(r"@import\s+[\"'](https?://[^\"']+)", doc, re.I)
        found += re.findall(r"https?://fonts\.(?:googleapis|gstatic)\.com[^\"'\s]*", doc)
    return found


# Chromium's own background services, which it contacts even with background networking
# disabled (component updater, account and time services); a page never references them.
BROWSER_OWN_HOSTS = {"update.googleapis.com", "accounts.google.com", "clients1.google.com",
                     "clients2.google.com", "clients4.google.com", "www.google.com",
                     "clientservices.googleapis.com", "safebrowsing.googleapis.com",
                     "safebrowsingohttpgateway.googleapis.com", "chromewebstore.googleapis.com",
                     "optimizationguide-pa.googleapis.com", "content-autofill.googleapis.com",
                     "redirector.gvt1.com", "edgedl.me.gvt1.com", "dl.google.com",
                     "android.clients.google.com", "mtalk.google.com",
                     "clients2.googleusercontent.com", "www.gstatic.com"}


def requested_host(request: bytes) -> str | None:
    """The host a proxied request is for: ``CONNECT h:443`` or ``GET http://h/...``.

    None for a connection that never sent a request line: Chromium opens speculative
    ("preconnect") sockets to its proxy and may close them unused, and such a socket
    names no resource, so it cannot be the page fetching anything.
    """
    first = request.split(b"\r\n", 1)[0].decode("latin-1").split()
    if len(first) < 2:
        return None
    target = first[1]
    target = target.split("://", 1)[-1]
    return target.split("/", 1)[0].rsplit(":", 1)[0]


class ConnectionRecorder:
    """A loopback 'proxy' that records every connection attempt and answers nothing.

    Each connection is read on its own thread, so a socket Chromium opens and leaves idle
    cannot hold back the ones behind it; ``page_requests`` first drains the backlog and
    waits for those readers, so a request made just before Chromium exited is counted.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[bytes] = []
        self.readers: list[threading.Thread] = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.stopped = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopped:
            self._accept_one()

    def _accept_one(self) -> bool:
        with self.lock:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return False
            reader = threading.Thread(target=self._read, args=(conn,), daemon=True)
            self.readers.append(reader)
        reader.start()
        return True

    def _read(self, conn: socket.socket) -> None:
        """Keep what the client sent before its first line ended, it went quiet, or closed."""
        got = b""
        with conn:
            conn.settimeout(3)
            try:
                while b"\r\n" not in got and len(got) < 4096:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    got += chunk
            except OSError:
                pass
        with self.lock:
            self.requests.append(got)

    @property
    def page_requests(self) -> list[str]:
        self.sock.settimeout(0)
        while self._accept_one():
            pass
        self.sock.settimeout(0.2)
        with self.lock:
            readers = list(self.readers)
        for reader in readers:
            reader.join(5)
        with self.lock:
            hosts = [requested_host(r) for r in self.requests]
        return [h for h in hosts if h is not None and h not in BROWSER_OWN_HOSTS]

    def close(self) -> None:
        self.stopped = True
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def recorder():
    rec = ConnectionRecorder()
    yield rec
    rec.close()


def chromium(url: str, action: list[str], recorder: ConnectionRecorder,
             tmp: Path) -> subprocess.CompletedProcess[str]:
    binary = require_binary("chromium")
    return subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--disable-default-apps", "--disable-domain-reliability",
         f"--user-data-dir={tmp}", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
         f"--proxy-server=127.0.0.1:{recorder.port}", "--proxy-bypass-list=<-loopback>",
         "--window-size=1280,1600", "--virtual-time-budget=3000", *action, url],
        capture_output=True, text=True, timeout=90)


def test_the_network_probe_sees_a_page_that_fetches(recorder, tmp_path: Path) -> None:
    """Control: a page with a CDN script does reach the recorder, so silence means offline."""
    page = tmp_path / "online.html"
    page.write_text('<html><body><p>hi</p><script src="https://cdn.example.com/x.js">'
                    "</script></body></html>")
    out = chromium(page.as_uri(), ["--dump-dom"], recorder, tmp_path / "profile")
    assert "<p>hi</p>" in out.stdout
    assert "cdn.example.com" in recorder.page_requests
    assert remote_references(page.read_text()) == ["https://cdn.example.com/x.js"]


@pytest.mark.parametrize("name,expected", [
    ("cpu.prof", "Hottest functions inside attest"),
    ("memory.prof", "Peak memory and its top allocators"),
    ("run.json", "Timeline (one lane per step in flight)"),
])
def test_html_report_renders_offline_in_chromium(made: Path, recorder, tmp_path: Path,
                                                 name: str, expected: str) -> None:
    target = tmp_path / "analysis.html"
    out = analyze(made, name, "--format", "html", "--output", str(target))
    assert out.returncode == 0, out.stderr
    page = target.read_text()
    assert remote_references(page) == []
    data = as_json(made, name)
    dom = chromium(target.as_uri(), ["--dump-dom"], recorder, tmp_path / "profile").stdout
    assert expected in dom
    for step in STEPS:
        assert f">{step}<" in dom
    assert " → ".join(data["run"]["critical_path"]) in html.unescape(dom)
    if data["cpu"]:
        for f in data["cpu"]["hottest"][:3]:
            assert html.escape(f["function"]) in dom
        assert "pyinstrumentHTMLRenderer" in dom  # the interactive tree is embedded
    if data["memory"]:
        assert html.escape(data["memory"]["top_allocators"][0]["function"]) in dom
    shot = tmp_path / "shot.png"
    chromium(target.as_uri(), [f"--screenshot={shot}"], recorder, tmp_path / "profile")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert recorder.page_requests == []


def test_seed_command_writes_cpu_analysis_html(made: Path) -> None:
    out = attest("analyze", "cpu.prof", "--format", "html", "--output", "cpu-analysis.html",
                 cwd=made)
    assert out.returncode == 0, out.stderr
    page = (made / "cpu-analysis.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "Slowest steps" in page
    assert "fonts.googleapis" not in page


def test_profiles_made_by_the_profilers_themselves_are_analyzed_without_a_run(
        tmp_path: Path) -> None:
    bindir = Path(sys.executable).parent
    script = tmp_path / "work.py"
    script.write_text("def crunch():\n    return sum(i * i for i in range(400000))\n"
                      "data = [bytearray(4096) for _ in range(2000)]\ncrunch()\n")
    made = [subprocess.run([str(bindir / "pyinstrument"), "-r", "session", "-o", "own.prof",
                            str(script)], cwd=tmp_path, capture_output=True, timeout=60),
            subprocess.run([str(bindir / "memray"), "run", "-q", "-o", "own.bin", str(script)],
                           cwd=tmp_path, capture_output=True, timeout=60)]
    assert [m.returncode for m in made] == [0, 0], [m.stderr for m in made]
    cpu = json.loads(attest("analyze", "own.prof", "-f", "json", cwd=tmp_path).stdout)
    assert cpu["kind"] == "cpu" and cpu["run"] is None and cpu["profiler"] is None
    assert any(f["function"] in ("crunch", "<genexpr>") for f in cpu["cpu"]["hottest"])
    mem = json.loads(attest("analyze", "own.bin", "-f", "json", cwd=tmp_path).stdout)
    assert mem["kind"] == "memory" and mem["run"] is None
    assert mem["memory"]["peak_bytes"] >= 2000 * 4096
    top = mem["memory"]["top_allocators"][0]
    assert (top["function"], top["line"]) == ("<listcomp>", 3)
    assert top["file"].endswith("work.py") and top["share"] > 0.5
    text = attest("analyze", "own.bin", cwd=tmp_path).stdout
    assert "no run linked" in text
    page = attest("analyze", "own.prof", "-o", "own.html", cwd=tmp_path)
    assert page.returncode == 0 and "No run is linked" in (tmp_path / "own.html").read_text()


def test_renderer_plugins_come_from_entry_points(tmp_path: Path) -> None:
    """A package declaring ``attest.renderers`` adds a format; a broken one only warns."""
    dist = tmp_path / "attest_extra-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: attest-extra\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[attest.renderers]\nsteps-csv = attest_extra:register\nbroken = attest_extra:nope\n")
    (tmp_path / "attest_extra.py").write_text(
        "def csv(subject):\n"
        "    return ''.join(f'{s.name},{s.wall_seconds}\\n' for s in subject.run.steps)\n"
        "def register(add):\n    add('run', 'csv', csv)\n")
    report = {"schema": "attest.run-report", "schema_version": 1, "run_id": "r",
              "pipeline": "p", "pipeline_file": "attest.yaml", "started_at": 1.0,
              "finished_at": 2.0, "status": "success", "steps": [
                  {"name": "only", "command": "true", "status": "success",
                   "wall_seconds": 0.5, "started_at": 1.1, "slot": 0}]}
    (tmp_path / "run.json").write_text(json.dumps(report))
    out = attest("analyze", "run.json", "--format", "csv", cwd=tmp_path,
                 env={"PYTHONPATH": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert out.stdout == "only,0.5\n"
    assert "broken" in out.stderr and "could not load" in out.stderr
