"""The JSON-lines trace file: append-only (never read back nor rewritten), bounded lines, a torn
last line (a crash mid-write) isolated; and ``--trace`` without an endpoint writes there."""

from __future__ import annotations

import json
import os
import textwrap
import time
from pathlib import Path
from typing import Any

from tests.support import attest, write_pipeline


def read_records(path: Path) -> list[dict[str, Any]]:
    from attest_cli.tracing.exporters.jsonl_file import read_records as read

    return list(read(path))


def traced_pipeline(project: Path, steps: str, tracing: str | None = None) -> None:
    tracing = tracing if tracing is not None else (
        "tracing:\n  exporter: {type: file, endpoint: spans.jsonl}\n")
    write_pipeline(project, "version: \"0.1\"\nname: p\nsteps:\n"
                   + textwrap.indent(textwrap.dedent(steps).strip("\n"), "  ") + "\n"
                   + tracing)


def test_export_appends_in_place_and_leaves_earlier_bytes_untouched(project: Path) -> None:
    traced_pipeline(project, "a: {run: 'true'}\nb: {run: 'true', needs: [a]}")
    path = project / "spans.jsonl"
    earlier = b"".join(json.dumps({"n": i, "pad": "x" * 200}).encode() + b"\n"
                       for i in range(2000))
    path.write_bytes(earlier)
    inode = os.stat(path).st_ino
    proc = attest("run", "--trace", cwd=project)
    assert proc.returncode == 0, proc.stderr
    data = path.read_bytes()
    assert os.stat(path).st_ino == inode  # appended to, not replaced by a rewritten copy
    assert data.startswith(earlier)
    new = [json.loads(x) for x in data[len(earlier):].splitlines()]
    assert {r["name"] for r in new} >= {"step a", "step b"}


def test_a_torn_last_line_stays_alone_and_readers_skip_it(project: Path) -> None:
    traced_pipeline(project, "a: {run: 'true'}")
    path = project / "spans.jsonl"
    assert attest("run", "--trace", "--no-cache", cwd=project).returncode == 0
    complete = path.read_bytes()
    first = [r["span_id"] for r in read_records(path)]
    path.write_bytes(complete + b'{"trace_id": "abc", "na')  # a crash mid-write
    proc = attest("run", "--trace", "--no-cache", cwd=project)
    assert proc.returncode == 0, proc.stderr
    data = path.read_bytes()
    assert data.startswith(complete + b'{"trace_id": "abc", "na\n')  # earlier lines intact
    records = list(read_records(path))
    assert [r["span_id"] for r in records[:len(first)]] == first
    assert len(records) == 2 * len(first)  # the second run's spans, all readable
    assert len(data.splitlines()) == 2 * len(first) + 1  # + the torn line, on its own


def test_every_line_is_bounded_and_says_when_it_was_shortened(project: Path) -> None:
    from attest_cli.tracing.exporters.jsonl_file import MAX_LINE_BYTES

    long_comment = "y" * 100_000
    traced_pipeline(project, f"big: {{run: 'true # {long_comment}'}}")
    proc = attest("run", "--trace", cwd=project)
    assert proc.returncode == 0, proc.stderr
    lines = (project / "spans.jsonl").read_bytes().splitlines(keepends=True)
    assert lines and all(len(x) <= MAX_LINE_BYTES for x in lines)
    step = next(json.loads(x) for x in lines if json.loads(x)["name"] == "step big")
    assert step["truncated"] is True
    command = step["attributes"]["attest.step.command"]
    assert command.startswith("true # yyy") and len(command) < 2_000
    assert step["attributes"]["cicd.pipeline.task.name"] == "big"


def test_a_line_is_one_json_object_whatever_its_strings_hold() -> None:
    from attest_cli.tracing.exporters.jsonl_file import encode_line

    record = {"name": "step a", "attributes": {"n": 3, "ok": True, "t": (1, 2), "x": 1.5},
              "status": {"code": "ok", "description": None}}
    line = encode_line(record)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {**record, "attributes": {**record["attributes"], "t": [1, 2]}}
    # a file name that is not UTF-8 decodes to a lone surrogate: escaped, not an error
    odd = encode_line({"name": "step \udcff", "attributes": {"path": "a\udcffb"}})
    assert json.loads(odd) == {"name": "step \udcff", "attributes": {"path": "a\udcffb"}}
    # anything else that is not JSON is written as its text
    assert json.loads(encode_line({"name": "s", "attributes": {"p": Path("x/y")}})) == \
        {"name": "s", "attributes": {"p": "x/y"}}


def test_trace_flag_without_an_endpoint_writes_the_file_and_says_where(project: Path) -> None:
    traced_pipeline(project, "a: {run: 'true'}", tracing="")
    t0 = time.monotonic()
    proc = attest("run", "--trace", cwd=project)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    path = project / ".attest" / "traces.jsonl"
    assert {r["name"] for r in read_records(path)} >= {"step a"}
    where = [x for x in proc.stderr.splitlines() if "traces.jsonl" in x]
    assert len(where) == 1, proc.stderr
    assert "could not export" not in proc.stderr
    assert elapsed < 20, elapsed  # used to wait on localhost:4318; a generous bound


def test_otlp_endpoint_from_the_environment_still_wins_over_the_file(project: Path) -> None:
    from tests.tracing.receivers import otlp_http_receiver

    traced_pipeline(project, "a: {run: 'true'}", tracing="")
    with otlp_http_receiver() as (got, base):
        proc = attest("run", "--trace", cwd=project,
                      env={"OTEL_EXPORTER_OTLP_ENDPOINT": base})
        assert proc.returncode == 0, proc.stderr
    assert "step a" in {s["name"] for s in got.spans}
    assert not (project / ".attest" / "traces.jsonl").exists()


def test_a_refused_connection_ends_the_export_at_once(project: Path) -> None:
    from tests.support import free_port

    port = free_port()  # nothing listens: connection refused
    traced_pipeline(project, "a: {run: 'true'}", tracing=(
        "tracing:\n  exporter:\n"
        f"    type: otlp\n    endpoint: http://127.0.0.1:{port}\n    timeout: 30s\n"))
    t0 = time.monotonic()
    proc = attest("run", "--trace", cwd=project, timeout=90)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    warnings = [x for x in proc.stderr.splitlines() if "could not export" in x]
    assert len(warnings) == 1 and "refused" in warnings[0].lower(), proc.stderr
    # retrying with backoff would wait out the 30 s deadline; a refusal is final
    assert elapsed < 15, elapsed


def test_file_exporter_runs_never_load_the_opentelemetry_sdk(project: Path) -> None:
    import subprocess
    import sys

    traced_pipeline(project, "a: {run: 'true'}\nb: {run: 'exit 1', needs: [a]}")
    code = ("import sys\nfrom attest_cli.cli.entry import main\n"
            "sys.argv = ['attest', 'run', '--trace']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('SDK', sorted(m for m in sys.modules if m.startswith('opentelemetry.sdk.')"
            " and m != 'opentelemetry.sdk.version')[:3])\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True,
                         text=True, timeout=60)
    assert "SDK []" in out.stdout, out.stdout + out.stderr
    names = {r["name"]: r for r in read_records(project / "spans.jsonl")}
    assert names["step b"]["status"]["code"] == "error"  # spans are complete without it
    assert names["RUN p"]["kind"] == "server"


def test_a_transient_collector_status_is_retried_within_the_deadline(project: Path) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as pb

    answers = [503, 200]
    got: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            req = pb.ExportTraceServiceRequest()
            req.ParseFromString(body)
            got.append(sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans))
            self.send_response(answers.pop(0) if answers else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        traced_pipeline(project, "a: {run: 'true'}", tracing=(
            "tracing:\n  exporter:\n    type: otlp\n"
            f"    endpoint: http://127.0.0.1:{server.server_address[1]}\n    timeout: 10s\n"))
        proc = attest("run", "--trace", "--no-cache", cwd=project)
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 0, proc.stderr
    assert "could not export" not in proc.stderr
    assert len(got) == 2 and got[0] == got[1] > 0  # the same batch, sent again after a 503
