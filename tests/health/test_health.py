"""Health checks: built-ins against a real Redis up and down, plug-ins from real entry points.

``attest health`` (exit 0/1) and ``/health/ready`` of ``attest serve`` (200/503) run the
same checks; the worked example under ``examples/health-plugin`` is pip-installed and
found through its ``attest.health_checks`` entry point.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

from attest_cli.health.checks import HealthStatus, run_checks
from tests.metrics.helpers import get, samples, start_attest, stop
from tests.support import REPO, attest, free_port, wait_for_port, write_pipeline


def health_json(project: Path, env: dict[str, str] | None = None) -> tuple[int, dict]:
    proc = attest("health", "--format", "json", cwd=project, env=env)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def ready(project: Path, env: dict[str, str] | None = None) -> tuple[int, dict]:
    """Start ``attest serve``, ask /health/ready once, stop it."""
    port = free_port()
    proc = start_attest(project, "serve", "--endpoint", f"127.0.0.1:{port}", env=env)
    try:
        assert wait_for_port(port, 20), stop(proc)
        code, body = get(f"http://127.0.0.1:{port}/health/ready")
        assert get(f"http://127.0.0.1:{port}/health/live")[0] == 200
        return code, json.loads(body)
    finally:
        stop(proc)


def test_health_reports_each_builtin_check(project: Path) -> None:
    code, body = health_json(project)
    assert code == 0
    assert body["status"] == "healthy"
    assert set(body["checks"]) == {"cache", "history"}  # no signing key configured
    for check in body["checks"].values():
        assert check["status"] == "healthy"
        assert check["duration_ms"] >= 0
    text = attest("health", cwd=project)
    assert text.returncode == 0 and text.stdout.startswith("healthy\n")


def test_redis_cache_backend_up_then_down(
        project: Path, redis_server: tuple[int, subprocess.Popen[bytes]],
) -> None:
    redis_port = redis_server[0]
    up = {"ATTEST_CACHE__BACKEND": "redis", "ATTEST_CACHE__ENDPOINT": f"127.0.0.1:{redis_port}"}
    code, body = health_json(project, up)
    assert code == 0, body
    assert body["checks"]["cache"] == {**body["checks"]["cache"], "status": "healthy",
                                       "detail": f"redis: 127.0.0.1:{redis_port}"}
    code, body = ready(project, up)
    assert code == 200 and body["checks"]["cache"]["status"] == "healthy"

    # a run stores into Redis; the size gauge asks each backend for its own size
    write_pipeline(project, "name: app\nsteps:\n  a: {run: 'echo x > o.txt', outputs: [o.txt]}\n")
    assert attest("run", cwd=project, env=up).returncode == 0
    port = free_port()
    proc = start_attest(project, "serve", "--endpoint", f"127.0.0.1:{port}", env=up)
    try:
        assert wait_for_port(port, 20), stop(proc)
        sizes = samples(get(f"http://127.0.0.1:{port}/metrics")[1])
    finally:
        stop(proc)
    assert sizes['attest_cache_size_bytes{backend="redis"}'] > 0
    assert sizes['attest_cache_size_bytes{backend="local"}'] > 0

    down = {**up, "ATTEST_CACHE__ENDPOINT": f"127.0.0.1:{free_port()}"}
    code, body = health_json(project, down)
    assert code == 1
    assert body["status"] == "unhealthy"
    assert body["checks"]["cache"]["status"] == "unhealthy"
    assert body["checks"]["cache"]["detail"].startswith("Cache unavailable: redis:")
    assert body["checks"]["history"]["status"] == "healthy"
    code, body = ready(project, down)
    assert code == 503 and body["checks"]["cache"]["status"] == "unhealthy"


def test_unwritable_history_and_missing_signing_key_are_unhealthy(project: Path) -> None:
    (project / "not-a-dir").write_text("a file where a directory should be")
    env = {"ATTEST_HISTORY__PATH": "not-a-dir/history.db",
           "ATTEST_SIGNING_KEY": "keys/absent.key"}
    code, body = health_json(project, env)
    assert code == 1
    assert body["checks"]["history"]["status"] == "unhealthy"
    assert "not writable" in body["checks"]["history"]["detail"]
    assert body["checks"]["signing_key"]["status"] == "unhealthy"
    assert "absent.key" in body["checks"]["signing_key"]["detail"]

    (project / "keys").mkdir()
    (project / "keys" / "absent.key").write_text("-----BEGIN PRIVATE KEY-----\nsecret\n")
    code, body = health_json(project, {"ATTEST_SIGNING_KEY": "keys/absent.key"})
    assert code == 0 and body["checks"]["signing_key"]["status"] == "healthy"
    assert "secret" not in json.dumps(body)


def test_installed_plugin_check_appears_in_health_and_readiness(
        project: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    source = tmp_path / "health-plugin"
    shutil.copytree(REPO / "examples" / "health-plugin", source)  # pip builds in the tree
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                          "--target", str(site), str(source)],
                         capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr
    env = {"PYTHONPATH": f"{site}:{REPO}"}
    code, body = health_json(project, env)
    assert code == 0
    assert body["checks"]["disk_space"]["status"] == "healthy"
    assert "MB free" in body["checks"]["disk_space"]["detail"]
    code, body = ready(project, env)
    assert code == 200 and body["checks"]["disk_space"]["status"] == "healthy"

    starved = {**env, "ATTEST_DISK_MIN_FREE_MB": str(2**40)}
    code, body = health_json(project, starved)
    assert code == 1 and body["checks"]["disk_space"]["status"] == "unhealthy"
    code, body = ready(project, starved)
    assert code == 503 and body["status"] == "unhealthy"


def test_a_plugin_that_fails_to_load_is_a_warning_and_degraded(
        project: Path, tmp_path: Path) -> None:
    dist = tmp_path / "site" / "broken_check-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-check\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[attest.health_checks]\nbroken = no_such_module_anywhere:Check\n")
    proc = attest("health", "--format", "json", cwd=project,
                  env={"PYTHONPATH": f"{tmp_path / 'site'}:{REPO}"})
    assert proc.returncode == 0, proc.stderr  # degraded still serves
    body = json.loads(proc.stdout)
    assert body["status"] == "degraded"
    assert body["checks"]["broken"]["status"] == "degraded"
    assert "no_such_module_anywhere" in body["checks"]["broken"]["detail"]
    assert "failed to load" in proc.stderr and "Traceback" not in proc.stderr


# -- the check runner itself ------------------------------------------------------------------
class _Check:
    def __init__(self, name: str, behaviour) -> None:  # type: ignore[no-untyped-def]
        self.name = name
        self.behaviour = behaviour

    async def check(self) -> HealthStatus:
        return await self.behaviour()


def test_checks_run_concurrently_each_with_its_own_timeout() -> None:
    both_started = asyncio.Event()
    arrived: list[str] = []

    def meets_the_other(name: str):  # type: ignore[no-untyped-def]
        async def run() -> HealthStatus:
            arrived.append(name)
            if len(arrived) == 2:
                both_started.set()
            await both_started.wait()  # only completes if the other check runs meanwhile
            return HealthStatus.healthy(name)
        return run

    async def hangs() -> HealthStatus:
        await asyncio.sleep(3600)
        return HealthStatus.healthy()

    async def raises() -> HealthStatus:
        raise RuntimeError("boom")

    async def degraded() -> HealthStatus:
        return HealthStatus.degraded("slow disk")

    checks = [_Check("a", meets_the_other("a")), _Check("b", meets_the_other("b")),
              _Check("hang", hangs), _Check("raise", raises), _Check("warn", degraded),
              _Check("warn", degraded)]
    report = asyncio.run(run_checks(checks, timeout=2.0))
    assert report.checks["a"].status == report.checks["b"].status == "healthy"
    assert report.checks["hang"].status == "unhealthy"
    assert report.checks["hang"].detail == "timed out after 2s"
    assert report.checks["raise"].detail == "check raised RuntimeError: boom"
    assert report.checks["warn"].status == report.checks["warn_2"].status == "degraded"
    assert report.status == "unhealthy" and report.http_status == 503
    only_degraded = asyncio.run(run_checks([_Check("warn", degraded)], timeout=1.0))
    assert only_degraded.status == "degraded" and only_degraded.http_status == 200


def test_a_check_stuck_in_a_thread_does_not_hold_the_probe(tmp_path: Path) -> None:
    import threading

    from attest_cli.config.layers import defaults
    from attest_cli.context import AppContext
    from attest_cli.health.checks import Readiness

    release = threading.Event()
    finished = threading.Event()

    def stuck() -> None:
        release.wait(60)
        finished.set()

    async def blocks() -> HealthStatus:
        await asyncio.to_thread(stuck)
        return HealthStatus.healthy()

    settings = defaults()
    settings.set("health.timeout", "0.2", "test")
    readiness = Readiness(AppContext(workdir=tmp_path, environ={}), settings)
    readiness.checks = [_Check("stuck", blocks)]
    try:
        report = readiness.evaluate()
        assert not finished.is_set()  # evaluate returned while the thread was still stuck
        assert report.checks["stuck"].detail == "timed out after 0.2s"
    finally:
        release.set()
        readiness.close()
