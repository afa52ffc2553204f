"""Metrics under load: 50 concurrent scrapers, and ``attest serve`` over 100,000 runs.

1. ``attest serve`` scraped by 50 concurrent clients for 10 s while pipelines run:
   requests served, p50/p99 latency, failed scrapes; against the floor a user would
   otherwise have, the same exposition as a static file behind ``python -m http.server``.
2. The live endpoint of ``attest run`` scraped the same way for the whole of a CPU-bound
   pipeline (~10 s): the same figures, and the run's wall time against the same run with
   no endpoint and no scrapers (the ratio is the run-time impact; the scrapers run on the
   same machine). Once with scrapers in a tight loop, once at one scrape per second each.
3. ``attest serve`` with 100,000 runs in the history: scrape latency against an empty
   history of 100 runs of the same pipelines (a ratio near 1 means the cost does not grow
   with the history), and the time a
   per-scrape aggregation of the whole run table would take instead (what the
   incrementally maintained totals save).

Run: ``.venv/bin/python benchmarks/metrics_load.py [SECONDS] [SCRAPERS] [serve,live,history]``.
"""

from __future__ import annotations

import http.client
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _timing import free_port, wait_port

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from attest_cli.engine.events import CacheChecked, RunFinished, StepFinished  # noqa: E402
from attest_cli.engine.run_report import RunReport, StepResult  # noqa: E402
from attest_cli.metrics.history import HistoryDB  # noqa: E402
from attest_cli.metrics.tally import Tally, account  # noqa: E402


def env_for(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTEST_")}
    env["XDG_CONFIG_HOME"] = str(root / ".xdg")
    return env


def scrape_once(port: int, path: str = "/metrics") -> float:
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200 or not body:
            raise RuntimeError(f"HTTP {resp.status}")
    finally:
        conn.close()
    return time.perf_counter() - t0


def load(port: int, seconds: float, scrapers: int, stop_early: threading.Event | None = None,
         path: str = "/metrics", pace: float = 0.0) -> dict[str, float]:
    """``scrapers`` threads scraping in a loop (each at most once per ``pace`` seconds)."""
    latencies: list[float] = []
    failures, refused = [0], [0]
    failed_at: list[float] = []
    stop_at: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def scraper() -> None:
        mine: list[float] = []
        while time.monotonic() < deadline:
            if stop_early is not None and stop_early.is_set():
                with lock:
                    if not stop_at:
                        stop_at.append(time.monotonic())
                break
            t0 = time.monotonic()
            try:
                mine.append(scrape_once(port, path))
            except ConnectionRefusedError:  # nothing listens: the run (and endpoint) ended
                with lock:
                    refused[0] += 1
            except Exception:
                with lock:
                    failures[0] += 1
                    failed_at.append(time.monotonic())
            if pace:
                time.sleep(max(0.0, pace - (time.monotonic() - t0)))
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=scraper) for _ in range(scrapers)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    out = summary(latencies, failures[0], elapsed)
    out["refused"] = refused[0]
    if stop_early is not None and stop_early.is_set():
        # the process exits right after the run: connections cut in its last second are the
        # end of the endpoint, not a failed scrape of a running one
        end = stop_at[0] if stop_at else time.monotonic()
        out["at_exit"] = sum(1 for t in failed_at if t >= end - 1.0)
        out["failed"] = failures[0] - out["at_exit"]
    return out


def summary(latencies: list[float], failures: int, elapsed: float) -> dict[str, float]:
    latencies.sort()
    n = len(latencies)
    return {"requests": n, "failed": failures, "rps": n / elapsed if elapsed else 0.0,
            "p50_ms": 1000 * latencies[n // 2] if n else float("nan"),
            "p99_ms": 1000 * latencies[min(n - 1, int(n * 0.99))] if n else float("nan")}


def show(label: str, s: dict[str, float]) -> None:
    after = ""
    if s.get("refused") or s.get("at_exit"):
        after = (f" (+{int(s.get('at_exit', 0))} cut and {int(s.get('refused', 0))} refused "
                 "as the process exited)")
    print(f"  {label}: {int(s['requests'])} scrapes ({s['rps']:.0f}/s), failed {int(s['failed'])}"
          f"{after}, p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms")


def write_pipeline(root: Path, steps: int, work: int, endpoint: str | None) -> None:
    lines = ["name: load"]
    if endpoint:
        lines += ["monitoring:", "  prometheus:", "    enabled: true",
                  f'    endpoint: "{endpoint}"']
    lines.append("steps:")
    for i in range(steps):
        lines += [f"  s{i}:",
                  f"    run: '{sys.executable} -c \"sum(range({work}))\"'",
                  "    cache: false"]
        if i >= 2:
            lines.append(f"    needs: [s{i - 2}]")
    (root / "attest.yaml").write_text("\n".join(lines) + "\n")


def timed_run(root: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "attest_cli", "-q", "run", "-j", "2"],
                          cwd=root, env=env_for(root), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return time.perf_counter() - t0


class _Runner:
    """Runs the pipeline again and again in the background (the load a runner carries)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.runs = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop)

    def _loop(self) -> None:
        while not self.done.is_set():
            timed_run(self.root)
            self.runs += 1

    def __enter__(self) -> _Runner:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()


def bench_serve(seconds: float, scrapers: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_pipeline(root, 4, 10**5, None)
        (root / "static").mkdir()  # attest writes a metrics file only into a directory that exists
        subprocess.run([sys.executable, "-m", "attest_cli", "-q", "run", "-j", "2",
                        "--metrics-file", "static/attest.prom"], cwd=root, env=env_for(root),
                       capture_output=True, check=True)
        port = free_port()
        serve = subprocess.Popen([sys.executable, "-m", "attest_cli", "serve", "--endpoint",
                                  f"127.0.0.1:{port}"], cwd=root, env=env_for(root),
                                 stderr=subprocess.DEVNULL)
        try:
            wait_port(port)
            with _Runner(root) as runner:
                stats = load(port, seconds, scrapers)
        finally:
            serve.send_signal(signal.SIGTERM)
            serve.wait(30)
        # the floor a user would otherwise have: the same exposition as a static file
        port = free_port()
        static = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                                   "127.0.0.1", "--directory", str(root / "static")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(port)
            with _Runner(root) as other:
                floor = load(port, seconds, scrapers, path="/attest.prom")
        finally:
            static.terminate()
            static.wait(30)
        print(f"{scrapers} concurrent scrapers for {seconds:g}s while pipelines ran "
              f"({runner.runs} and {other.runs} runs meanwhile):")
        show("attest serve", stats)
        show("static file via python -m http.server (same text)", floor)
        print(f"  ratio serve / static file: p50 {stats['p50_ms'] / floor['p50_ms']:.2f}x, "
              f"p99 {stats['p99_ms'] / floor['p99_ms']:.2f}x, "
              f"throughput {stats['rps'] / floor['rps']:.2f}x")


def bench_live(scrapers: int, steps: int = 24, work: int = 3 * 10**7, pace: float = 0.0,
               rounds: int = 3) -> None:
    """Runs with and without the endpoint, interleaved (the machine's load drifts)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        port = free_port()
        write_pipeline(root, steps, work, None)
        timed_run(root)  # warm-up
        base: list[float] = []
        loaded: list[float] = []
        results = []
        for _ in range(rounds):
            write_pipeline(root, steps, work, None)
            base.append(timed_run(root))
            write_pipeline(root, steps, work, f"127.0.0.1:{port}")
            proc_t0 = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-m", "attest_cli", "-q", "run", "-j",
                                     "2"], cwd=root, env=env_for(root),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_port(port)
            finished = threading.Event()

            def watch(p: subprocess.Popen[bytes] = proc, ev: threading.Event = finished) -> None:
                p.wait()
                ev.set()
            threading.Thread(target=watch, daemon=True).start()
            results.append(load(port, 3600, scrapers, stop_early=finished, pace=pace))
            proc.wait()
            loaded.append(time.perf_counter() - proc_t0)
        merged = {k: statistics.median(r[k] for r in results) for k in results[0]}
        merged["failed"] = sum(r["failed"] for r in results)
        merged["refused"] = sum(r["refused"] for r in results)
        merged["at_exit"] = sum(r.get("at_exit", 0) for r in results)
        how = f"each once per {pace:g}s" if pace else "each in a tight loop"
        print(f"live endpoint of attest run ({steps} CPU-bound steps, -j 2), {scrapers} "
              f"scrapers ({how}) for the whole run (median of {rounds}):")
        show("live", merged)
        b, x = statistics.median(base), statistics.median(loaded)
        print(f"  run time: {b:.2f}s without endpoint or scrapers, {x:.2f}s with both: "
              f"ratio {x / b:.2f}x")


def populate(db: HistoryDB, n: int) -> None:
    """``n`` finished runs (3 steps each, cache lookups), written in one transaction."""
    tally = Tally()
    now = time.time()
    rows, steps = [], []
    for i in range(n):
        started = now - (n - i) * 30
        rep = RunReport(run_id=f"run-{i:06d}", pipeline=f"p{i % 5}", pipeline_file="a.yaml",
                        started_at=started, finished_at=started + 12.5,
                        status="success" if i % 7 else "failure", exit_code=0 if i % 7 else 1)
        rep.steps = [StepResult(name=f"s{j}", command="true", status="success",
                                wall_seconds=1.5 * (j + 1)) for j in range(3)]
        for s in rep.steps:
            account(tally, StepFinished(run_id=rep.run_id, result=s), rep.pipeline)
            account(tally, CacheChecked(step=s.name, backend="local", hit=bool(i % 3), key="k",
                                        reason=None, duration=0.001), rep.pipeline)
            steps.append((rep.run_id, s.name, s.status, 0, s.wall_seconds, 0, "local", None))
        account(tally, RunFinished(report=rep), rep.pipeline)
        rows.append((rep.run_id, rep.pipeline, rep.status, rep.exit_code, started,
                     started + 12.5, 12.5, "bench", "0.1.0", "a.yaml", 3, 3, None))
    with db.connect(write=True) as conn:
        # columns named: the table has grown since (pid, process_start), they stay NULL
        conn.executemany(
            "INSERT INTO runs (run_id, pipeline, status, exit_code, started_at, finished_at, "
            "duration_seconds, hostname, attest_version, pipeline_file, steps_total, "
            "steps_success, interrupted_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        conn.executemany("INSERT INTO steps VALUES (?,?,?,?,?,?,?,?)", steps)
        db._add(conn, tally)


def sequential(port: int, n: int) -> dict[str, float]:
    lat = [scrape_once(port) for _ in range(n)]
    return summary(lat, 0, sum(lat))


def bench_big_history(n_runs: int = 100_000, scrapes: int = 300) -> None:
    figures = {}
    small = 100  # same pipelines, steps and so the same series: only the history grows
    for label, n in ((f"{small} runs", small), (f"{n_runs:,} runs", n_runs)):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            db = HistoryDB(root / ".attest" / "history.db")
            db.ensure()
            if n:
                t0 = time.perf_counter()
                populate(db, n)
                print(f"(wrote {n:,} runs into the history in {time.perf_counter() - t0:.1f}s)")
            port = free_port()
            serve = subprocess.Popen([sys.executable, "-m", "attest_cli", "serve",
                                      "--endpoint", f"127.0.0.1:{port}"], cwd=root,
                                     env=env_for(root), stderr=subprocess.DEVNULL)
            try:
                wait_port(port)
                scrape_once(port)
                figures[label] = sequential(port, scrapes)
                if n == n_runs:
                    t0 = time.perf_counter()
                    with sqlite3.connect(db.path) as conn:
                        for _ in range(5):
                            conn.execute("SELECT pipeline, status, count(*), sum(duration_seconds)"
                                         " FROM runs GROUP BY pipeline, status").fetchall()
                            conn.execute("SELECT r.pipeline, s.name, s.status, count(*), "
                                         "sum(s.wall_seconds) FROM steps s JOIN runs r USING "
                                         "(run_id) GROUP BY 1, 2, 3").fetchall()
                    figures["full-table aggregation"] = {"p50_ms": (time.perf_counter() - t0)
                                                         / 5 * 1000}
            finally:
                serve.send_signal(signal.SIGTERM)
                serve.wait(30)
    print(f"attest serve scrape latency, {scrapes} sequential scrapes:")
    base, big = figures[f"{small} runs"], figures[f"{n_runs:,} runs"]
    show(f"{small} runs", base)
    show(f"{n_runs:,} runs", big)
    print(f"  ratio {n_runs:,} runs / {small} runs: p50 {big['p50_ms'] / base['p50_ms']:.2f}x, "
          f"p99 {big['p99_ms'] / base['p99_ms']:.2f}x")
    full = figures["full-table aggregation"]["p50_ms"]
    print(f"  re-aggregating the run table per scrape instead would cost {full:.0f} ms per "
          f"scrape (only two of the metrics): {full / big['p50_ms']:.0f}x the whole scrape")


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    scrapers = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    parts = sys.argv[3].split(",") if len(sys.argv) > 3 else ["serve", "live", "history"]
    if "serve" in parts:
        bench_serve(seconds, scrapers)
    if "live" in parts:
        bench_live(scrapers)
        bench_live(scrapers, pace=1.0)  # still 50 scrapes/s: far above any Prometheus
    if "history" in parts:
        bench_big_history()


if __name__ == "__main__":
    main()
