"""The Redis and S3 tiers against real servers: ``redis-server`` and moto's S3 over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from attest_cli.cache.restore import process_umask
from tests.cache.helpers import (
    AWS_ENV,
    forget_locally,
    make_project,
    run,
    runs,
    snapshot,
    statuses,
    step,
    with_section,
)
from tests.support import attest, free_port, require_binary, wait_for_port

pytestmark = pytest.mark.integration












OUTPUTS = ["out/a.txt", "out/bin/run.sh", "out/empty", "out/link.txt", "other.txt",
           "final.txt"]


def check_remote_round_trip(root: Path, backend: str, env: dict[str, str] | None = None
                            ) -> None:
    _, first = run(root, "-j", "2", env=env)  # gen and other upload while the next one runs
    assert statuses(first) == {"gen": "success", "other": "success", "final": "success"}
    assert first["cache"][backend]["misses"] == 3
    assert first["cache"][backend]["stored_bytes"] > 0
    before = snapshot(root, OUTPUTS)
    forget_locally(root)
    _, second = run(root, env=env)
    assert statuses(second) == {"gen": "cached", "other": "cached", "final": "cached"}
    assert second["cache"] == {backend: {"hits": 3, "misses": 0, "stored_bytes": 0}}
    assert {step(second, n)["cache_backend"] for n in ("gen", "other", "final")} == {backend}
    # restores keep only the executable bit of a recorded mode: the 0700 dir gets the umask's
    before["out/empty"] = ("dir", 0o777 & ~process_umask())
    assert snapshot(root, OUTPUTS) == before
    assert (runs(root, "gen"), runs(root, "other"), runs(root, "final")) == (1, 1, 1)
    # the remote hit filled the local tier: the next run is answered locally
    _, third = run(root, env=env)
    assert third["cache"]["local"]["hits"] == 3
    (root / "src" / "a.txt").write_text("alpha, changed\n")
    _, fourth = run(root, env=env)
    assert statuses(fourth) == {"gen": "success", "other": "cached", "final": "success"}
    assert step(fourth, "gen")["cache_miss_reason"] == "input src/a.txt changed"


def test_redis_backend_stores_restores_and_reruns_only_downstream(
        project: Path, redis_server: tuple[int, subprocess.Popen[bytes]]) -> None:
    port, _ = redis_server
    make_project(project,
                 with_section(f"cache: {{backend: redis, endpoint: '127.0.0.1:{port}'}}\n"))
    check_remote_round_trip(project, "redis")
    import redis

    client = redis.Redis(port=port)
    assert any(k.startswith(b"attest/entries/") for k in client.scan_iter())
    assert 0 < client.ttl(next(client.scan_iter(match="attest/entries/*"))) <= 30 * 86400
    stats = attest("cache", "stats", "--format", "json", cwd=project)
    rows = {r["backend"]: r for r in json.loads(stats.stdout)["backends"]}
    assert rows["redis"]["entries"] == 5 and rows["redis"]["error"] is None


def test_a_redis_hit_refreshes_the_ttl_of_what_it_read(
        project: Path, redis_server: tuple[int, subprocess.Popen[bytes]]) -> None:
    port, _ = redis_server
    make_project(project,
                 with_section(f"cache: {{backend: redis, endpoint: '127.0.0.1:{port}'}}\n"))
    run(project)
    import redis

    client = redis.Redis(port=port)
    entries = sorted(client.scan_iter(match="attest/entries/*"))
    for k in entries:
        client.expire(k, 100)  # as if last used long ago
    forget_locally(project)
    _, report = run(project)
    assert set(statuses(report).values()) == {"cached"}
    assert all(client.ttl(k) > 29 * 86400 for k in entries)  # read, so used: TTL from now


def test_redis_large_blobs_are_chunked_and_restored(
        project: Path, redis_server: tuple[int, subprocess.Popen[bytes]]) -> None:
    port, _ = redis_server
    from tests.support import write_pipeline

    write_pipeline(project, f"""
        name: big
        cache: {{backend: redis, endpoint: 'redis://127.0.0.1:{port}/0'}}
        steps:
          big:
            run: head -c 9000000 /dev/urandom > big.bin
            outputs: [big.bin]
        """)
    run(project)
    content = (project / "big.bin").read_bytes()
    shutil.rmtree(project / ".attest" / "cache")
    (project / "big.bin").unlink()
    _, report = run(project)
    assert statuses(report) == {"big": "cached"}
    assert (project / "big.bin").read_bytes() == content
    import redis

    assert list(redis.Redis(port=port).scan_iter(match="attest/chunks/*"))


def test_redis_killed_mid_run_degrades_to_misses(
        project: Path, redis_server: tuple[int, subprocess.Popen[bytes]]) -> None:
    port, proc = redis_server
    text = with_section(f"cache: {{backend: redis, endpoint: '127.0.0.1:{port}', timeout: 2}}\n")
    # the first step kills the server: every later lookup and store hits a dead backend
    text = text.replace("steps:\n", "steps:\n  kill:\n    run: kill -9 $REDIS_PID || true\n"
                        "    cache: false\n    cache_exclude_env: [REDIS_PID]\n", 1)
    for name in ("gen", "other"):
        text = text.replace(f"  {name}:\n    run: ", f"  {name}:\n    needs: [kill]\n    run: ", 1)
    make_project(project, text)
    proc_run, report = run(project, "-j", "1", env={"REDIS_PID": str(proc.pid)})
    proc.wait(timeout=10)
    assert report["status"] == "success"
    assert statuses(report) == {"kill": "success", "gen": "success", "other": "success",
                                "final": "success"}
    assert report["cache"]["redis"]["misses"] == 3
    warnings = [json.loads(line) for line in proc_run.stderr.splitlines()
                if line.startswith("{") and '"WARN"' in line and "redis" in line]
    assert len([w for w in warnings if "unavailable" in w["message"]]) == 1
    # the local tier still took the entries: a rerun without the server hits locally
    _, again = run(project, env={"REDIS_PID": "999999999"})
    assert again["cache"]["local"]["hits"] == 3


def test_required_remote_that_is_down_fails_fast(project: Path) -> None:
    port = free_port()  # nothing listens here
    make_project(project, with_section(
        f"cache: {{backend: redis, endpoint: '127.0.0.1:{port}', required: true, timeout: 1}}\n"))
    proc = attest("run", cwd=project)
    assert proc.returncode == 1
    assert "cache.required is true and the redis cache is unreachable" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert runs(project, "gen") == 0


def test_read_only_mode_never_writes_the_remote(
        project: Path, redis_server: tuple[int, subprocess.Popen[bytes]]) -> None:
    port, _ = redis_server
    make_project(project, with_section(
        f"cache: {{backend: redis, endpoint: '127.0.0.1:{port}', mode: read-only}}\n"))
    _, report = run(project)
    import redis

    assert redis.Redis(port=port).dbsize() == 0
    assert report["cache"]["local"]["stored_bytes"] > 0
    refused = attest("cache", "clear", "--all", cwd=project)
    assert refused.returncode == 2 and "read-only" in refused.stderr


def test_s3_backend_over_http_stores_restores_and_reruns_only_downstream(
        project: Path, s3_server: str) -> None:
    import boto3

    os.environ.update(AWS_ENV)  # for this process's boto3 only; the CLI gets env= below
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(
        Bucket="ci-cache")
    make_project(project, with_section(
        f"cache: {{backend: s3, bucket: ci-cache, prefix: team/, endpoint_url: '{s3_server}',"
        " region: us-east-1}\n"))
    check_remote_round_trip(project, "s3", env=AWS_ENV)
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="ci-cache")["Contents"]]
    assert any(k.startswith("team/entries/") for k in keys)
    assert any(k.startswith("team/blobs/") for k in keys)
    verify = attest("cache", "verify", cwd=project, env=AWS_ENV)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    pruned = attest("cache", "prune", cwd=project, env=AWS_ENV)
    assert pruned.returncode == 0, pruned.stderr
    assert "s3: removed 0 entries" in pruned.stdout  # all recent: nothing to prune
    cleared = attest("cache", "clear", "--all", cwd=project, env=AWS_ENV)
    assert cleared.returncode == 0 and "s3: removed" in cleared.stdout
    assert client.list_objects_v2(Bucket="ci-cache").get("KeyCount", 0) == 0


def test_s3_reads_from_every_lane_reuse_pooled_connections(
        s3_server: str, caplog: pytest.LogCaptureFixture) -> None:
    """With a remote tier a run reads from up to 4 x -j threads at once; past botocore's
    default pool of 10 every further request opened (and dropped) a connection."""
    import logging
    import threading

    import boto3

    from attest_cli.cache.backends.s3 import S3Backend
    from attest_cli.engine.scheduler import LANES_PER_SLOT

    os.environ.update(AWS_ENV)
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(
        Bucket="lanes")
    backend = S3Backend("lanes", endpoint_url=s3_server, region="us-east-1")
    backend.put("entries/x", b"x" * 100)
    lanes = LANES_PER_SLOT * 6  # -j 6
    start = threading.Barrier(lanes)
    got: list[bytes | None] = []

    def lane() -> None:
        start.wait()
        for _ in range(3):
            got.append(backend.get("entries/x"))

    with caplog.at_level(logging.WARNING, logger="urllib3.connectionpool"):
        threads = [threading.Thread(target=lane) for _ in range(lanes)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert got == [b"x" * 100] * lanes * 3
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]


def test_s3_server_gone_is_a_warning_not_a_failure(project: Path, s3_server: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    make_project(project, with_section(
        f"cache: {{backend: s3, bucket: none, endpoint_url: '{dead}', timeout: 1}}\n"))
    proc, report = run(project, env=AWS_ENV)
    assert report["status"] == "success"
    assert report["cache"]["s3"]["misses"] == 3
    assert "s3 cache unavailable" in proc.stderr



def test_circuit_breaker_stops_calling_a_dead_backend() -> None:
    import logging

    from attest_cli.cache.backends.base import BackendUnavailable
    from attest_cli.cache.backends.guard import GuardedBackend
    from attest_cli.cache.backends.redis import RedisBackend

    class Collect(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.WARNING)
            self.messages: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.messages.append(record.getMessage())

    handler = Collect()
    logger = logging.getLogger("attest.cache")
    logger.addHandler(handler)
    try:
        dead = RedisBackend(f"127.0.0.1:{free_port()}", timeout=1)
        guarded = GuardedBackend(dead, threshold=3, cooldown=60)
        for _ in range(10):
            with pytest.raises(BackendUnavailable):
                guarded.get("entries/x")
    finally:
        logger.removeHandler(handler)
    assert guarded.failed_calls == 3  # the other 7 never reached the network
    assert guarded.is_open
    assert len([m for m in handler.messages if "unavailable" in m]) == 1
    assert len([m for m in handler.messages if "not calling it for 60s" in m]) == 1


def test_redis_password_from_the_environment(project: Path, tmp_path: Path) -> None:
    binary = require_binary("redis-server")
    port = free_port()
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--requirepass", "s3cret",
                               "--dir", str(tmp_path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for_port(port)
        make_project(project, with_section(
            f"cache: {{backend: redis, endpoint: '127.0.0.1:{port}', required: true}}\n"))
        refused = attest("run", cwd=project)
        assert refused.returncode == 1 and "unreachable" in refused.stderr
        _, report = run(project, env={"ATTEST_REDIS_PASSWORD": "s3cret"})
        assert report["cache"]["redis"]["stored_bytes"] > 0
    finally:
        server.kill()
        server.wait()


def test_required_remote_that_dies_mid_run_fails_the_run(
        project: Path, redis_server: tuple[int, subprocess.Popen[bytes]]) -> None:
    port, proc = redis_server
    text = with_section(
        f"cache: {{backend: redis, endpoint: '127.0.0.1:{port}', timeout: 2, required: true}}\n")
    text = text.replace("steps:\n", "steps:\n  kill:\n    run: kill -9 $REDIS_PID || true\n"
                        "    cache: false\n    cache_exclude_env: [REDIS_PID]\n", 1)
    text = text.replace("  gen:\n    run: ", "  gen:\n    needs: [kill]\n    run: ", 1)
    text = text.replace("  other:\n    run: ", "  other:\n    needs: [kill]\n    run: ", 1)
    make_project(project, text)
    proc_run, report = run(project, "-j", "1", env={"REDIS_PID": str(proc.pid)}, ok=False)
    assert proc_run.returncode == 1
    assert set(statuses(report).values()) == {"success"}  # every step still ran
    assert report["status"] == "failure"
    assert "cache.required is true and the redis cache failed during the run" in proc_run.stderr


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A key and a certificate for 127.0.0.1 (the certificate is its own CA)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_path, cert_path = directory / "key.pem", directory / "cert.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def test_redis_over_tls_with_rediss_url(project: Path, tmp_path: Path) -> None:
    binary = require_binary("redis-server")
    key, cert = _self_signed(tmp_path)
    port = free_port()
    server = subprocess.Popen([binary, "--port", "0", "--tls-port", str(port), "--bind",
                               "127.0.0.1", "--tls-cert-file", str(cert), "--tls-key-file",
                               str(key), "--tls-auth-clients", "no", "--save", "",
                               "--appendonly", "no", "--dir", str(tmp_path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for_port(port)
        make_project(project, with_section(
            f"cache: {{backend: redis, endpoint: 'rediss://127.0.0.1:{port}"
            f"?ssl_ca_certs={cert}', required: true}}\n"))
        _, report = run(project)
        assert report["cache"]["redis"]["stored_bytes"] > 0
        forget_locally(project)
        _, report = run(project)
        assert report["cache"] == {"redis": {"hits": 3, "misses": 0, "stored_bytes": 0}}
    finally:
        server.kill()
        server.wait()
