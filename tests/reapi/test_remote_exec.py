"""``attest run --remote-exec`` end to end: a real BuildGrid, real bot processes, the real CLI.

Each bot (tests/reapi/bot.py) exports ``WORKER_ID`` to the commands it runs and logs every
lease it takes, so a test can tell where a step ran and count what the server scheduled.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.reapi.buildgrid_server import BuildGrid, grid, postgres, start_bot
from tests.reapi.servers import BlackHole, ReapiServer
from tests.support import attest, free_port, wait_for, write_pipeline

__all__ = ["grid", "postgres"]  # fixtures

MAKE_OUT = """
    steps:
      make:
        run: cat src.txt > out.txt; echo "$WORKER_ID" >> out.txt
        inputs: [src.txt]
        outputs: [out.txt]
    """


def project(root: Path, grid: BuildGrid | None, pipeline: str = MAKE_OUT, *,
            endpoint: str | None = None, extra: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "src.txt").write_text("hello\n")
    url = endpoint or (grid.endpoint if grid else "")
    write_pipeline(root, pipeline)
    (root / ".attest").mkdir(exist_ok=True)
    (root / ".attest" / "config.yaml").write_text(f"execution:\n  endpoint: {url}\n{extra}")
    return root


def report(root: Path) -> dict[str, Any]:
    runs = sorted((root / ".attest" / "runs").glob("*.json"))
    data: dict[str, Any] = json.loads(runs[-1].read_text())
    return data


def step(data: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in data["steps"] if s["name"] == name)
    return found


def run(root: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return attest("run", "--remote-exec", *args, cwd=root, timeout=timeout,
                  env={"WORKER_ID": ""})


def test_step_runs_on_the_worker_and_its_output_comes_back(grid: BuildGrid,
                                                           tmp_path: Path) -> None:
    bot = start_bot(grid, "bot-1")
    root = project(tmp_path / "p", grid)
    done = run(root)
    assert done.returncode == 0, done.stderr + grid.log()[-2000:]
    assert (root / "out.txt").read_text() == "hello\nbot-1\n"
    assert re.search(r"make \([0-9.]+m?s on bot-1\)", done.stderr), done.stderr
    made = step(report(root), "make")
    assert made["status"] == "success" and made["exit_code"] == 0
    remote = made["remote"]
    assert remote["backend"] == "reapi" and remote["worker"] == "bot-1"
    assert remote["endpoint"] == grid.endpoint and remote["cached_result"] is False
    assert remote["action_digest"].startswith("sha256:")
    assert remote["result_digest"].startswith("sha256:")
    assert remote["queued"] <= remote["worker_start"] <= remote["worker_completed"]
    assert made["started_at"] - 1 <= remote["queued"] <= made["finished_at"]
    assert [row[2] for row in bot.leases()] == ["bot-1"]


def test_second_checkout_is_an_action_cache_hit_with_no_new_lease(grid: BuildGrid,
                                                                  tmp_path: Path) -> None:
    """Two checkouts share results through the server: the second schedules nothing."""
    bot = start_bot(grid, "bot-1")
    first = project(tmp_path / "a", grid)
    assert run(first).returncode == 0
    second = project(tmp_path / "b", grid)
    done = run(second)
    assert done.returncode == 0, done.stderr
    assert (second / "out.txt").read_text() == "hello\nbot-1\n"
    made = step(report(second), "make")
    assert made["status"] == "cached" and made["cache_backend"] == "reapi"
    assert made["remote"]["cached_result"] is True and made["remote"]["worker"] == "bot-1"
    assert len(bot.leases()) == 1


def test_two_workers_share_a_fan_out(grid: BuildGrid, tmp_path: Path) -> None:
    bots = [start_bot(grid, "bot-1"), start_bot(grid, "bot-2")]
    steps = "".join(f"""
      s{i}:
        run: sleep 1; echo "$WORKER_ID" > out{i}.txt
        outputs: [out{i}.txt]
    """ for i in range(6))
    root = project(tmp_path / "p", grid, "steps:" + steps)
    done = run(root, "-j", "6")
    assert done.returncode == 0, done.stderr
    workers = {(root / f"out{i}.txt").read_text().strip() for i in range(6)}
    assert workers == {"bot-1", "bot-2"}
    assert {step(report(root), f"s{i}")["remote"]["worker"] for i in range(6)} == workers
    assert sum(len(b.leases()) for b in bots) == 6


def test_a_killed_worker_s_step_is_rescheduled_on_another(grid: BuildGrid,
                                                          tmp_path: Path) -> None:
    doomed = start_bot(grid, "bot-doomed")
    root = project(tmp_path / "p", grid, """
        steps:
          slow:
            run: sleep 3; echo "$WORKER_ID" > out.txt
            outputs: [out.txt]
        """)
    proc = subprocess.Popen([sys.executable, "-m", "attest_cli", "run", "--remote-exec"],
                            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "WORKER_ID": ""})
    try:
        assert wait_for(lambda: bool(doomed.leases()), 30), grid.log()[-2000:]
        doomed.kill()
        start_bot(grid, "bot-rescue")
        _, err = proc.communicate(timeout=60)  # the bound: requeued after ~6 s, runs 3 s
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert (root / "out.txt").read_text() == "bot-rescue\n"
    assert step(report(root), "slow")["remote"]["worker"] == "bot-rescue"


def test_a_killed_worker_with_no_other_fails_the_step_within_its_bound(
        grid: BuildGrid, tmp_path: Path) -> None:
    doomed = start_bot(grid, "bot-doomed")
    root = project(tmp_path / "p", grid, """
        steps:
          slow:
            run: sleep 30; echo done > out.txt
            outputs: [out.txt]
            timeout: 4
        """, extra="  queue_timeout: 2\n")
    proc = subprocess.Popen([sys.executable, "-m", "attest_cli", "run", "--remote-exec"],
                            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "WORKER_ID": ""})
    try:
        assert wait_for(lambda: bool(doomed.leases()) or proc.poll() is not None, 30)
        assert doomed.leases(), (proc.communicate()[1] if proc.poll() is not None
                                 else grid.log()[-2000:])
        t0 = time.monotonic()
        doomed.kill()
        _, err = proc.communicate(timeout=30)
        elapsed = time.monotonic() - t0
    finally:
        proc.kill()
    assert proc.returncode == 1, err
    slow = step(report(root), "slow")
    assert slow["status"] == "failure" and "no result within 6s" in slow["reason"]
    assert elapsed < 10  # timeout 4 s + queue_timeout 2 s, counted from the Execute
    assert not (root / "out.txt").exists()


def test_server_down_is_one_warning_and_a_local_run(tmp_path: Path) -> None:
    root = project(tmp_path / "p", None, endpoint=f"grpc://127.0.0.1:{free_port()}")
    done = run(root, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (root / "out.txt").read_text() == "hello\n\n"  # no WORKER_ID here
    warnings = [line for line in done.stderr.splitlines() if "remote execution" in line]
    assert len(warnings) == 1 and "running the steps locally" in warnings[0], done.stderr
    assert step(report(root), "make")["remote"] is None


def test_server_down_with_execution_required_exits_1_before_any_step(tmp_path: Path) -> None:
    root = project(tmp_path / "p", None, endpoint=f"grpc://127.0.0.1:{free_port()}",
                   extra="  required: true\n")
    done = run(root, timeout=60)
    assert done.returncode == 1, done.stderr
    assert "execution.required is true and remote execution is unavailable" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (root / "out.txt").exists()


def test_undeclared_input_fails_remotely_but_not_locally(grid: BuildGrid,
                                                         tmp_path: Path) -> None:
    """Hermeticity: the worker sees only declared inputs, never this checkout's files."""
    start_bot(grid, "bot-1")
    sneaky = """
        steps:
          make:
            run: cat src.txt > out.txt
            outputs: [out.txt]
        """
    root = project(tmp_path / "p", grid, sneaky)
    done = run(root)
    assert done.returncode == 1
    made = step(report(root), "make")
    assert made["status"] == "failure" and made["exit_code"] == 1
    assert made["remote"]["worker"] == "bot-1"
    assert "No such file" in Path(made["log_file"]).read_text()
    local = attest("run", "--no-cache", cwd=root)
    assert local.returncode == 0 and (root / "out.txt").read_text() == "hello\n"


def test_remote_false_and_secrets_keep_a_step_here(grid: BuildGrid, tmp_path: Path) -> None:
    bot = start_bot(grid, "bot-1")
    root = project(tmp_path / "p", grid, """
        steps:
          here:
            run: echo "[$WORKER_ID]" > here.txt
            outputs: [here.txt]
            remote: false
          secret:
            run: echo "[$WORKER_ID]" > secret.txt
            outputs: [secret.txt]
            secrets: [TOKEN]
          there:
            run: echo "[$WORKER_ID]" > there.txt
            outputs: [there.txt]
        """)
    done = run(root)
    assert done.returncode == 0, done.stderr
    assert (root / "here.txt").read_text() == "[]\n"
    assert (root / "secret.txt").read_text() == "[]\n"
    assert (root / "there.txt").read_text() == "[bot-1]\n"
    data = report(root)
    assert step(data, "here")["remote"] is None and step(data, "secret")["remote"] is None
    assert len(bot.leases()) == 1


def test_platform_properties_pick_the_worker(grid: BuildGrid, tmp_path: Path) -> None:
    start_bot(grid, "bot-a", properties={"OSFamily": "linux", "pool": "a"})
    start_bot(grid, "bot-b", properties={"OSFamily": "linux", "pool": "b"})
    steps = "".join(f"""
      s{i}:
        run: echo "$WORKER_ID" > out{i}.txt
        outputs: [out{i}.txt]
        platform: {{OSFamily: linux, pool: b}}
    """ for i in range(3))
    root = project(tmp_path / "p", grid, "steps:" + steps)
    done = run(root, "-j", "3")
    assert done.returncode == 0, done.stderr
    assert {(root / f"out{i}.txt").read_text() for i in range(3)} == {"bot-b\n"}


def test_step_timeout_is_the_action_timeout(grid: BuildGrid, tmp_path: Path) -> None:
    start_bot(grid, "bot-1")
    root = project(tmp_path / "p", grid, """
        steps:
          slow:
            run: sleep 30
            timeout: 2
        """)
    t0 = time.monotonic()
    done = run(root)
    assert time.monotonic() - t0 < 25
    assert done.returncode == 1, done.stderr
    slow = step(report(root), "slow")
    assert slow["timed_out"] is True and slow["reason"] == "timed out after 2s"
    assert slow["remote"]["worker"] == "bot-1"


def test_ctrl_c_stops_a_remote_run_promptly(grid: BuildGrid, tmp_path: Path) -> None:
    bot = start_bot(grid, "bot-1")
    pidfile = tmp_path / "worker-command.pid"  # the bot runs on this machine
    root = project(tmp_path / "p", grid, f"""
        steps:
          slow:
            run: echo $$ > {pidfile}; exec sleep 60
        """)
    proc = subprocess.Popen([sys.executable, "-m", "attest_cli", "run", "--remote-exec"],
                            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "WORKER_ID": ""})
    try:
        assert wait_for(lambda: bool(bot.leases()), 30), grid.log()[-2000:]
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
        elapsed = time.monotonic() - t0
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert elapsed < 3, elapsed
    assert step(report(root), "slow")["status"] == "failure"
    # the operation was cancelled on the server: the worker stops the command
    pid = int(pidfile.read_text())
    assert wait_for(lambda: not alive(pid), 20)


def alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    except FileNotFoundError:
        return False


def test_trace_metrics_and_receipt_say_where_each_step_ran(grid: BuildGrid,
                                                           tmp_path: Path) -> None:
    from tests.tracing.receivers import spans_from_file

    start_bot(grid, "bot-1")
    root = project(tmp_path / "p", grid, MAKE_OUT + """
    tracing:
      exporter: {type: file, endpoint: spans.jsonl}
    """)
    assert attest("keys", "generate", cwd=root).returncode == 0
    done = run(root, "--sign", "--verify", "--output", "receipt.json", "--trace",
               "--metrics-file", "m.prom")
    assert done.returncode == 0, done.stderr
    remote = step(report(root), "make")["remote"]

    span = next(s for s in spans_from_file((root / "spans.jsonl").read_text())
                if s["name"] == "step make")
    assert span["attrs"]["attest.remote.worker"] == "bot-1"
    assert span["attrs"]["attest.remote.backend"] == "reapi"
    assert span["attrs"]["attest.remote.action_digest"] == remote["action_digest"]
    assert span["attrs"]["attest.remote.worker_start"] == remote["worker_start"]

    metrics = (root / "m.prom").read_text()
    assert 'attest_remote_executions_total{backend="reapi",status="success"} 1.0' in metrics
    assert 'attest_remote_queue_seconds_count{backend="reapi"} 1.0' in metrics

    receipt = json.loads((root / "receipt.json").read_text())
    entry = next(s for s in receipt["steps"] if s["name"] == "make")
    assert entry["remote"] == {"backend": "reapi", "worker": "bot-1",
                               "action_digest": remote["action_digest"],
                               "result_digest": remote["result_digest"]}
    assert attest("verify", "receipt.json", cwd=root).returncode == 0
    for export in (["--format", "in-toto"], ["--predicate", "slsa-provenance-v1"]):
        exported = attest("receipt", "export", "receipt.json", *export, cwd=root)
        assert exported.returncode == 0, exported.stderr
    entry["remote"]["worker"] = "bot-2"  # the signature covers where it ran
    (root / "forged.json").write_text(json.dumps(receipt))
    assert attest("verify", "forged.json", cwd=root).returncode == 1


def test_remote_execution_and_the_reapi_cache_share_one_action(grid: BuildGrid,
                                                                tmp_path: Path) -> None:
    """With ``cache.backend: reapi`` on the same server, what a worker ran is the very
    Action the cache looks up: the other checkout restores it and no worker is asked."""
    bot = start_bot(grid, "bot-1")
    cache = f"cache:\n  backend: reapi\n  endpoint: {grid.endpoint}\n"
    pipeline = MAKE_OUT.rstrip(" ") + "        platform: {OSFamily: linux}\n"
    first = project(tmp_path / "a", grid, pipeline, extra="  required: true\n" + cache)
    assert run(first).returncode == 0
    action = step(report(first), "make")["remote"]["action_digest"]
    explain = attest("cache", "explain", "make", cwd=first)
    assert f"reapi action: {action.split(':', 1)[1]}" in explain.stdout, explain.stdout
    second = project(tmp_path / "b", grid, pipeline, extra="  required: true\n" + cache)
    done = run(second)
    assert done.returncode == 0, done.stderr
    made = step(report(second), "make")
    assert made["status"] == "cached" and made["cache_backend"] == "reapi"
    assert (second / "out.txt").read_text() == "hello\nbot-1\n"
    assert len(bot.leases()) == 1


def test_do_not_cache_runs_again_on_a_worker(grid: BuildGrid, tmp_path: Path) -> None:
    bot = start_bot(grid, "bot-1")
    pipeline = MAKE_OUT.rstrip(" ") + "        do_not_cache: true\n"
    for name in ("a", "b"):
        done = run(project(tmp_path / name, grid, pipeline))
        assert done.returncode == 0, done.stderr
        assert step(report(tmp_path / name), "make")["status"] == "success"
    assert len(bot.leases()) == 2


def server_dies_mid_run(grid: BuildGrid) -> str:
    return f"""
        steps:
          first:
            run: kill -9 {grid.proc.pid}; sleep 1
            remote: false
          second:
            run: echo "[$WORKER_ID]" > out.txt
            outputs: [out.txt]
            needs: [first]
          third:
            run: echo "[$WORKER_ID]" > out3.txt
            outputs: [out3.txt]
            needs: [second]
        """


def test_server_gone_mid_run_is_one_warning_and_local_steps(grid: BuildGrid,
                                                            tmp_path: Path) -> None:
    start_bot(grid, "bot-1")
    root = project(tmp_path / "p", grid, server_dies_mid_run(grid))
    done = run(root, timeout=90)
    assert done.returncode == 0, done.stderr
    assert (root / "out.txt").read_text() == "[]\n"
    assert (root / "out3.txt").read_text() == "[]\n"
    warnings = [line for line in done.stderr.splitlines() if "remote execution" in line]
    assert len(warnings) == 1 and "remaining steps locally" in warnings[0], done.stderr


def test_server_gone_mid_run_with_execution_required_fails_the_step(grid: BuildGrid,
                                                                   tmp_path: Path) -> None:
    start_bot(grid, "bot-1")
    root = project(tmp_path / "p", grid, server_dies_mid_run(grid),
                   extra="  required: true\n")
    done = run(root, timeout=90)
    assert done.returncode == 1, done.stderr
    second = step(report(root), "second")
    assert second["status"] == "failure" and second["exit_code"] is None
    assert second["reason"].startswith("execution.required: REAPI ")
    assert step(report(root), "third")["status"] == "skipped"
    assert not (root / "out.txt").exists()


def test_a_broken_operation_stream_is_resumed_with_wait_execution(grid: BuildGrid,
                                                                  tmp_path: Path) -> None:
    from tests.reapi.servers import start_proxy

    start_bot(grid, "bot-1")
    proxy = start_proxy(grid.target)
    proxy.stream_limit["Execute"] = 1  # the stream ends after naming the operation
    try:
        root = project(tmp_path / "p", grid, endpoint=proxy.url)
        done = run(root)
    finally:
        proxy.server.stop(grace=None)
    assert done.returncode == 0, done.stderr
    assert (root / "out.txt").read_text() == "hello\nbot-1\n"
    assert "WaitExecution" in proxy.methods()


@pytest.mark.parametrize(("planted", "why"), [
    ("../escaped.txt", "'../escaped.txt'"),
    (".attest/config.yaml", "inside attest's state directory"),
])
def test_a_result_that_cannot_be_trusted_fails_the_step_and_writes_nothing(
        grid: BuildGrid, tmp_path: Path, planted: str, why: str) -> None:
    start_bot(grid, "bot-evil", extra_outputs=(planted,))
    root = project(tmp_path / "p", grid)
    config = (root / ".attest" / "config.yaml").read_text()
    done = run(root)
    assert done.returncode == 1, done.stderr
    made = step(report(root), "make")
    assert made["status"] == "failure" and made["reason"].startswith("remote execution: ")
    assert why in made["reason"], made["reason"]
    assert not (root / "out.txt").exists() and not (root / "undeclared.txt").exists()
    assert not (tmp_path / "escaped.txt").exists()
    assert (root / ".attest" / "config.yaml").read_text() == config


def test_only_declared_outputs_come_back(grid: BuildGrid, tmp_path: Path) -> None:
    """A glob's directory comes back whole from the worker; attest keeps what the globs
    cover, and drops what a worker adds beyond the declared outputs."""
    start_bot(grid, "bot-1", extra_outputs=("planted.txt",))
    root = project(tmp_path / "p", grid, """
        steps:
          make:
            run: mkdir -p dist && echo a > dist/a.txt && echo b > dist/b.log && echo c > c.txt
            outputs: [dist/*.txt]
        """)
    done = run(root)
    assert done.returncode == 0, done.stderr
    assert (root / "dist" / "a.txt").read_text() == "a\n"
    assert not (root / "dist" / "b.log").exists()
    assert not (root / "c.txt").exists() and not (root / "planted.txt").exists()


def test_headers_go_with_every_call_and_never_into_the_record(grid: BuildGrid,
                                                             tmp_path: Path) -> None:
    from tests.reapi.servers import start_proxy

    start_bot(grid, "bot-1")
    proxy = start_proxy(grid.target)
    token = "s3cr3t-t0ken-value"
    try:
        root = project(tmp_path / "p", grid, endpoint=proxy.url)
        done = attest("run", "--remote-exec", cwd=root, timeout=120,
                      env={"WORKER_ID": "",
                           "ATTEST_EXECUTION__HEADERS": f"authorization=Bearer {token}"})
    finally:
        proxy.server.stop(grace=None)
    assert done.returncode == 0, done.stderr
    assert {"GetCapabilities", "FindMissingBlobs", "Execute"} <= proxy.methods()
    assert all(m.get("authorization") == f"Bearer {token}" for m in proxy.metadata)
    assert token not in done.stderr + done.stdout
    for path in (root / ".attest").rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path


def test_a_cache_only_server_is_one_warning_and_a_local_run(buildgrid: ReapiServer,
                                                             tmp_path: Path) -> None:
    root = project(tmp_path / "p", None, endpoint=buildgrid.url,
                   extra=f"  instance: {buildgrid.instance}\n")
    done = run(root)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "remote execution" in line]
    assert len(warnings) == 1 and "does not execute actions" in warnings[0], done.stderr
    assert (root / "out.txt").read_text() == "hello\n\n"


def test_a_hung_server_costs_one_execution_timeout(black_hole: BlackHole,
                                                   tmp_path: Path) -> None:
    root = project(tmp_path / "p", None, endpoint=f"grpc://127.0.0.1:{black_hole.port}",
                   extra="  timeout: 1\n")
    t0 = time.monotonic()
    done = run(root, timeout=60)
    assert time.monotonic() - t0 < 15  # 1 s for the probe, then the step runs here
    assert done.returncode == 0, done.stderr
    assert "no complete answer within the 1s deadline" in done.stderr
    assert (root / "out.txt").read_text() == "hello\n\n"
