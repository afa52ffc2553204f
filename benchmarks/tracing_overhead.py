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
    # rounds interleave the variants, so load from anything else on the machine hits all alike
    dirs = {name: Path(tempfile.mkdtemp()) for name in variants}
    for name, tracing in variants.items():
        write_pipeline(dirs[name], n, tracing)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    spans = dict.fromkeys(variants, 0)
    for round_no in range(runs + 1):  # round 0 warms up
        for name in variants:
            before = receiver.spans
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=dirs[name], env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            elapsed = time.perf_counter() - t0
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            if round_no:
                samples[name].append(elapsed)
                # CPU seconds of attest and its steps: steadier than wall time on a busy host
                cpu[name].append(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
                spans[name] += receiver.spans - before
    times = {name: statistics.median(values) for name, values in samples.items()}
    cpus = {name: statistics.median(values) for name, values in cpu.items()}
    base = times["off"]
    print(f"{n}-step pipeline (chain, -j1, --no-cache), median of {runs} interleaved rounds "
          "after 1 warm-up round")
    for name, t in times.items():
        print(f"  tracing {name:<9} wall {t * 1000:8.1f} ms (ratio {t / base:5.3f})   "
              f"cpu {cpus[name] * 1000:8.1f} ms (ratio {cpus[name] / cpus['off']:5.3f})   "
              f"spans received {spans[name]}")
    print(f"ratio rate-1.0/off: wall {times['rate 1.0'] / base:.3f}, "
          f"cpu {cpus['rate 1.0'] / cpus['off']:.3f} (target <= 1.10)")
    print(f"ratio rate-0.1/off: wall {times['rate 0.1'] / base:.3f}, "
          f"cpu {cpus['rate 0.1'] / cpus['off']:.3f}")
    receiver.server.shutdown()
    for path in dirs.values():
        shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
