"""``cache.backend: reapi`` end to end: attest runs against a real BuildGrid server."""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path

import pytest

from attest_cli.cache.restore import process_umask
from tests.cache.helpers import (
    forget_locally,
    make_project,
    run,
    runs,
    snapshot,
    statuses,
    step,
    with_section,
)
from tests.e2e.helpers import signal_when, start_run
from tests.reapi.servers import (
    MUTATING,
    BlackHole,
    ReapiServer,
    RecordingProxy,
    start_buildgrid,
    stop,
)
from tests.support import attest, free_port, write_pipeline

pytestmark = pytest.mark.integration

OUTPUTS = ["out/a.txt", "out/bin/run.sh", "out/empty", "out/link.txt", "other.txt", "final.txt"]


def section(url: str, **extra: object) -> str:
    fields = ", ".join([f"backend: reapi, endpoint: '{url}', instance: main",
                        *(f"{k}: {v}" for k, v in extra.items())])
    return f"cache: {{{fields}}}\n"


def checkout(root: Path, url: str, **extra: object) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    return make_project(root, with_section(section(url, **extra)))


def test_hits_are_shared_between_two_checkouts(tmp_path: Path, buildgrid: ReapiServer) -> None:
    first = checkout(tmp_path / "alice", buildgrid.url)
    _, report = run(first)
    assert statuses(report) == {"gen": "success", "other": "success", "final": "success"}
    assert report["cache"]["reapi"]["misses"] == 3
    assert report["cache"]["reapi"]["stored_bytes"] > 0
    expected = snapshot(first, OUTPUTS)
    second = checkout(tmp_path / "bob", buildgrid.url)  # another directory, same project
    _, report = run(second)
    assert statuses(report) == {"gen": "cached", "other": "cached", "final": "cached"}
    assert report["cache"] == {"reapi": {"hits": 3, "misses": 0, "stored_bytes": 0}}
    assert {step(report, n)["cache_backend"] for n in ("gen", "other", "final")} == {"reapi"}
    assert (runs(second, "gen"), runs(second, "other"), runs(second, "final")) == (0, 0, 0)
    # the same files, executable bit, link and (umask-moded) empty directory
    expected["out/empty"] = ("dir", 0o777 & ~process_umask())
    assert snapshot(second, OUTPUTS) == expected
    assert (second / "final.txt").read_text() == "alpha\nbeta\n"
    # the step's captured log came back too (the ActionResult's stdout)
    logs = list((second / ".attest" / "logs").rglob("gen.log"))
    assert [p.read_text() for p in logs] == ["generated gen\n"]
    # the hit filled bob's local tier: the next run is answered locally
    _, report = run(second)
    assert report["cache"]["local"]["hits"] == 3
    # a changed input is a miss in the Action Cache too, and only downstream re-runs
    (second / "src" / "a.txt").write_text("alpha, changed\n")
    shutil.rmtree(second / ".attest" / "cache")
    _, report = run(second)
    assert statuses(report) == {"gen": "success", "other": "cached", "final": "success"}


def test_read_only_sends_no_mutating_call(tmp_path: Path,
                                          recording_proxy: RecordingProxy) -> None:
    root = checkout(tmp_path / "p", recording_proxy.url, mode="read-only")
    _, report = run(root)
    assert statuses(report) == {"gen": "success", "other": "success", "final": "success"}
    assert report["cache"]["local"]["stored_bytes"] > 0
    assert "GetActionResult" in recording_proxy.methods()  # it did ask
    assert not set(recording_proxy.calls) & MUTATING, recording_proxy.calls
    # and a read-write checkout elsewhere still misses: nothing was stored
    other = checkout(tmp_path / "q", recording_proxy.url)
    _, report = run(other)
    assert report["cache"]["reapi"]["misses"] == 3


def test_server_down_warns_once_and_runs_locally(project: Path) -> None:
    checkout(project, f"grpc://127.0.0.1:{free_port()}", timeout=2)
    proc, report = run(project)
    assert statuses(report) == {"gen": "success", "other": "success", "final": "success"}
    warnings = [line for line in proc.stderr.splitlines() if "cache unavailable" in line]
    assert len(warnings) == 1, proc.stderr
    assert "reapi cache unavailable, continuing without it" in warnings[0]
    assert "Traceback" not in proc.stderr


def test_required_server_down_fails_the_run(project: Path) -> None:
    checkout(project, f"grpc://127.0.0.1:{free_port()}", timeout=2, required="true")
    proc = attest("run", cwd=project)
    assert proc.returncode == 1, proc.stderr
    assert "cache.required is true and the reapi cache is unreachable" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert runs(project, "gen") == 0


def test_token_headers_are_sent_and_never_logged(tmp_path: Path,
                                                 recording_proxy: RecordingProxy) -> None:
    token = "bb-token-8d1e2f"
    root = checkout(tmp_path / "p", recording_proxy.url,
                    headers=f"{{x-buildbuddy-api-key: {token}}}")
    proc, _ = run(root, "-v")
    assert {m.get("x-buildbuddy-api-key") for m in recording_proxy.metadata} == {token}
    assert token not in proc.stderr + proc.stdout
    for path in (root / ".attest").rglob("*"):
        if path.is_file() and "cache" not in path.parts:
            assert token.encode() not in path.read_bytes(), path


def test_a_hung_server_neither_hangs_the_run_nor_holds_up_ctrl_c(
        project: Path, black_hole: BlackHole) -> None:
    checkout(project, f"grpc://127.0.0.1:{black_hole.port}", timeout=1)
    started = time.monotonic()
    _, report = run(project, "-j", "1")
    assert time.monotonic() - started < 20  # one deadline, then the breaker; never a hang
    assert statuses(report) == {"gen": "success", "other": "success", "final": "success"}
    # with a long deadline, SIGINT still ends the run promptly
    checkout(project, f"grpc://127.0.0.1:{black_hole.port}", timeout=60)
    before = black_hole.connections
    forget_locally(project)
    child = start_run(project)
    # interrupt once the first call is stuck in the black hole (not after a guessed sleep)
    _err, elapsed = signal_when(child, lambda: black_hole.connections > before,
                                signal.SIGINT, settle=0.3)
    assert elapsed < 10
    assert child.returncode == 130


def test_bad_endpoint_is_a_config_error(project: Path) -> None:
    checkout(project, "http://127.0.0.1:1")
    proc = attest("run", cwd=project)
    assert proc.returncode == 2
    assert "cache.endpoint" in proc.stderr and "grpc://host:port" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cache_explain_shows_the_reapi_entry(project: Path, buildgrid: ReapiServer) -> None:
    checkout(project, buildgrid.url)
    before = json.loads(attest("cache", "explain", "gen", "-f", "json", cwd=project).stdout)
    assert before["in_cache"]["reapi"] is False and before["would_hit"] is False
    run(project)
    after = json.loads(attest("cache", "explain", "gen", "-f", "json", cwd=project).stdout)
    assert after["in_cache"] == {"local": True, "reapi": True}
    hash_, size = after["reapi_action"].split("/")
    assert len(hash_) == 64 and int(size) > 0
    assert after["reapi_action"] == before["reapi_action"]
    table = attest("cache", "explain", "gen", cwd=project).stdout
    assert "reapi: present" in table and f"reapi action: {after['reapi_action']}" in table


def test_big_outputs_go_through_bytestream_both_ways(tmp_path: Path,
                                                    recording_proxy: RecordingProxy) -> None:
    """An output above the batch limit (BuildGrid: 4 MiB) is written with ByteStream Write
    and restored with ByteStream Read, verified, in another checkout."""
    pipeline = f"""
    name: big
    cache: {{backend: reapi, endpoint: '{recording_proxy.url}', instance: main, timeout: 30}}
    steps:
      make:
        run: head -c 6000000 /dev/urandom > big.bin
        outputs: [big.bin]
    """
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    for root in (alice, bob):
        root.mkdir()
        write_pipeline(root, pipeline)
    run(alice)
    assert "Write" in recording_proxy.methods()
    _, report = run(bob)
    assert statuses(report) == {"make": "cached"}
    assert "Read" in recording_proxy.methods()
    assert (bob / "big.bin").read_bytes() == (alice / "big.bin").read_bytes()


def test_grpcs_with_a_private_ca(tmp_path: Path) -> None:
    from tests.cache.test_cache_remote import _self_signed

    key, cert = _self_signed(tmp_path)
    server = start_buildgrid(tmp_path, tls=(key, cert))
    try:
        url = f"grpcs://127.0.0.1:{server.port}"
        alice = checkout(tmp_path / "alice", url, tls_ca=f"'{cert}'")
        run(alice)
        _, report = run(checkout(tmp_path / "bob", url, tls_ca=f"'{cert}'"))
        assert report["cache"] == {"reapi": {"hits": 3, "misses": 0, "stored_bytes": 0}}
        # without the CA the server's certificate is not trusted: one warning, steps run
        carol = checkout(tmp_path / "carol", url)
        proc, report = run(carol)
        assert statuses(report) == {"gen": "success", "other": "success", "final": "success"}
        assert sum("reapi cache unavailable" in ln for ln in proc.stderr.splitlines()) == 1
    finally:
        stop(server.proc)
