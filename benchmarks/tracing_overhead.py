"""What tracing costs a run: a 200-step pipeline with tracing off, on at rate 1.0 (every span
exported to a local OTLP/HTTP receiver that decodes the protobuf), and on at rate 0.1.

The baseline is the same ``attest run`` without tracing, in the same session, so the ratio is
the price of ``--trace``. Target (issue #7): <= 1.10 at rate 1.0.
Run: ``.venv/bin/python benchmarks/tracing_overhead.py [STEPS] [RUNS]``.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Receiver:
    """OTLP/HTTP on loopback: decodes each request and counts the spans."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as pb

        self.spans = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = pb.ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver.spans += sum(len(ss.spans) for rs in request.resource_spans
                                      for ss in rs.scope_spans)
                reply = pb.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def write_pipeline(root: Path, n: int, tracing: str) -> None:
    lines = ['version: "0.1"', "name: bench", "steps:"]
    for i in range(n):
        lines += [f"  s{i}:", "    run: 'true'"]
        if i:
            lines.append(f"    needs: [s{i - 1}]")
    (root / "attest.yaml").write_text("\n".join(lines) + "\n" + tracing)


def in_process_cost(steps: int = 2000) -> tuple[float, float]:
    """CPU seconds per step of attest's span bookkeeping (start, TRACEPARENT, finish) and per
    span of exporting, measured in-process: what a loaded machine's noise cannot blur."""
    from attest_cli.engine.events import RunFinished, StepFinished, StepStarted
    from attest_cli.engine.masking import SecretMasker
    from attest_cli.engine.run_report import RunReport, StepResult
    from attest_cli.tracing.config import TracingConfig
    from attest_cli.tracing.tracer import RunTracer

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cfg = TracingConfig(enabled=True, exporter="file", endpoint=str(root / "t.jsonl"))
        tracer = RunTracer(cfg, workdir=root, environ={}, masker=SecretMasker(["s3cr3t"]),
                           pipeline_root=root)
        report = RunReport(run_id="r", pipeline="p", pipeline_file="attest.yaml",
                           started_at=time.time())
        tracer.start_root(report)
        t0 = time.process_time()
        for i in range(steps):
            tracer(StepStarted(run_id="r", step=f"s{i}", command="true", slot=0))
            tracer.step_environment(f"s{i}")
            now = time.time()
            tracer(StepFinished(run_id="r", result=StepResult(
                name=f"s{i}", command="true", status="success", exit_code=0, started_at=now,
                finished_at=now)))
        t1 = time.process_time()
        report.status, report.finished_at = "success", time.time()
        tracer(RunFinished(report=report))
        tracer.close()
        t2 = time.process_time()
    return (t1 - t0) / steps, (t2 - t1) / (steps + 1)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    receiver = Receiver()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ATTEST_", "OTEL_", "TRACEPARENT", "TRACESTATE"))}
    env["XDG_CONFIG_HOME"] = tempfile.mkdtemp()
    cmd = [sys.executable, "-m", "attest_cli", "-q", "run", "-j", "1", "--no-cache"]
    variants = {
        "off": "",
        "rate 1.0": f"tracing:\n  enabled: true\n  exporter: {{type: otlp, endpoint: "
                    f"'{receiver.endpoint}'}}\n  sampling: {{rate: 1.0}}\n",
        "rate 0.1": f"tracing:\n  enabled: true\n  exporter: {{type: otlp, endpoint: "
                    f"'{receiver.endpoint}'}}\n  sampling: {{rate: 0.1}}\n",
    }
    # rounds interleave the variants, so load from anything else on the machine hits all alike;
    # a 1-step pipeline beside the N-step one splits the cost into per-run and per-step parts
    keys = [(name, size) for name in variants for size in (n, 1)]
    dirs = {key: Path(tempfile.mkdtemp()) for key in keys}
    for (name, size), path in dirs.items():
        write_pipeline(path, size, variants[name])
    wall: dict[tuple[str, int], list[float]] = {key: [] for key in keys}
    cpu: dict[tuple[str, int], list[float]] = {key: [] for key in keys}
    spans = dict.fromkeys(keys, 0)
    for round_no in range(runs + 1):  # round 0 warms up
        for key in keys:
            before = receiver.spans
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=dirs[key], env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            elapsed = time.perf_counter() - t0
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            if round_no:
                wall[key].append(elapsed)
                # CPU seconds of attest and its steps: steadier than wall time on a busy host
                cpu[key].append(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
                spans[key] += receiver.spans - before
    w = {key: statistics.median(v) for key, v in wall.items()}
    c = {key: statistics.median(v) for key, v in cpu.items()}
    print(f"{n}-step pipeline (chain of `true`, -j1, --no-cache); median of {runs} interleaved "
          "rounds after 1 warm-up round")
    for name in variants:
        per_step = ((c[name, n] - c[name, 1]) - (c["off", n] - c["off", 1])) / (n - 1)
        print(f"  tracing {name:<9} wall {w[name, n] * 1000:7.1f} ms "
              f"(ratio {w[name, n] / w['off', n]:5.3f})  cpu {c[name, n] * 1000:7.1f} ms "
              f"(ratio {c[name, n] / c['off', n]:5.3f})  added cpu: per run "
              f"{(c[name, 1] - c['off', 1]) * 1000:+6.1f} ms, per step {per_step * 1000:+6.3f} "
              f"ms  spans received {spans[name, n] + spans[name, 1]}")
    print(f"ratio rate-1.0/off: wall {w['rate 1.0', n] / w['off', n]:.3f}, "
          f"cpu {c['rate 1.0', n] / c['off', n]:.3f} (target <= 1.10)")
    per_step, per_span = in_process_cost()
    print(f"in-process: span bookkeeping {per_step * 1e6:.0f} us CPU per step; exporting "
          f"{per_span * 1e6:.0f} us CPU per span (file exporter)")
    print(f"ratio rate-0.1/off: wall {w['rate 0.1', n] / w['off', n]:.3f}, "
          f"cpu {c['rate 0.1', n] / c['off', n]:.3f}")
    receiver.server.shutdown()
    for path in dirs.values():
        shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
