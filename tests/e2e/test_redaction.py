"""Credentials inside URLs (``redis://:PASSWORD@host``, ``?token=...``) never reach an artefact.

One end-to-end test runs a pipeline against a real ``redis-server --requirepass``, with
credentials in every URL-valued key, exercises every way attest prints or stores a URL, and
greps every captured output and every file under the workspace for each secret.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from attest_cli.redaction import credentials_in, redact_text, redact_url
from tests.metrics.helpers import get, start_attest, stop
from tests.support import attest, free_port, wait_for_port, write_pipeline

REDIS_PW = "Rd1sPassw0rd-zq"
PUSH_PW = "PushPassw0rd-zq"
PUSH_TOKEN = "PushT0ken-zq"
OTLP_KEY = "OtlpApiK3y-zq"
OTLP_AUTH = "OtlpBearer-zq"
S3_SIG = "S3Signatur3-zq"
SECRETS = (REDIS_PW, PUSH_PW, PUSH_TOKEN, OTLP_KEY, OTLP_AUTH, S3_SIG)


# -- the function itself ------------------------------------------------------------------


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://:pw@host:6379/0", "redis://***@host:6379/0"),
    ("redis://user:pw@host", "redis://***@host"),
    ("https://ghp_token@github.com/o/r.git", "https://***@github.com/o/r.git"),
    (":pw@127.0.0.1:6379", "***@127.0.0.1:6379"),
    ("127.0.0.1:6379", "127.0.0.1:6379"),
    ("http://h/p?a=1&token=t&b=2", "http://h/p?a=1&token=***&b=2"),
    ("https://b.s3.amazonaws.com/k?X-Amz-Credential=AK%2F1&X-Amz-Signature=ff&x=1",
     "https://b.s3.amazonaws.com/k?X-Amz-Credential=***&X-Amz-Signature=***&x=1"),
    ("http://h/?api_key=1&apikey=2&access_token=3&password=4&secret=5&sig=6&key=7",
     "http://h/?api_key=***&apikey=***&access_token=***&password=***&secret=***&sig=***"
     "&key=***"),
    ("http://h:4318/v1/traces", "http://h:4318/v1/traces"),
    ("", ""),
])
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_text_finds_urls_inside_messages() -> None:
    text = "redis at redis://u:pw@h:1/0: refused; see http://x/?token=abc."
    assert redact_text(text) == "redis at redis://***@h:1/0: refused; see http://x/?token=***."


def test_credentials_in_gives_the_values_to_mask() -> None:
    assert set(credentials_in("redis://user:pw1@h/?token=tok1&x=1")) == {"pw1", "tok1"}
    assert credentials_in("https://tok2@github.com/") == ["tok2"]  # a lone user is the token
    assert credentials_in(":pw3@127.0.0.1:6379") == ["pw3"]
    assert credentials_in("127.0.0.1:6379") == []


# -- every artefact ------------------------------------------------------------------------


@pytest.fixture
def redis_with_password(redis_server: tuple[int, subprocess.Popen[bytes]]
                        ) -> tuple[int, subprocess.Popen[bytes]]:
    """A real redis-server that refuses every command without ``REDIS_PW``."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=redis_server[0])
    client.config_set("requirepass", REDIS_PW)
    client.close()
    return redis_server


def _pipeline(redis_port: int, dead_port: int) -> str:
    return f"""
        version: "0.1"
        name: leaky
        cache:
          backend: redis
          endpoint: "redis://:{REDIS_PW}@127.0.0.1:{redis_port}/0"
          timeout: 2
        monitoring:
          prometheus:
            pushgateway: "http://pushuser:{PUSH_PW}@127.0.0.1:{dead_port}/?token={PUSH_TOKEN}"
        tracing:
          enabled: true
          exporter:
            type: file
            endpoint: trace.jsonl
        steps:
          build:
            run: cp src.txt out.txt && echo built
            inputs: [src.txt]
            outputs: [out.txt]
          broken:
            run: echo failing; exit 3
            needs: [build]
        """


@pytest.mark.integration
def test_no_artefact_carries_a_credential_from_a_url(
        project: Path, tmp_path: Path,
        redis_with_password: tuple[int, subprocess.Popen[bytes]]) -> None:
    redis_port, redis_proc = redis_with_password
    dead = free_port()
    write_pipeline(project, _pipeline(redis_port, dead))
    (project / "src.txt").write_text("source\n")
    keys = attest("keys", "generate", cwd=project)
    assert keys.returncode == 0, keys.stderr
    otlp = {"ATTEST_TRACING__EXPORTER__TYPE": "otlp",
            "ATTEST_TRACING__EXPORTER__ENDPOINT":
                f"http://127.0.0.1:{dead}/v1/traces?api_key={OTLP_KEY}",
            "ATTEST_TRACING__EXPORTER__HEADERS": f"Authorization=Bearer {OTLP_AUTH}",
            "ATTEST_CACHE__ENDPOINT_URL":
                f"http://127.0.0.1:{dead}/?X-Amz-Signature={S3_SIG}"}
    outputs: list[str] = []

    def cli(*args: str, env: dict[str, str] | None = None,
            codes: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        r = attest(*args, cwd=project, env={"ATTEST_LOG_FORMAT": "json", **(env or {})})
        outputs.extend([r.stdout, r.stderr])
        assert r.returncode in codes, (args, r.stdout, r.stderr)
        return r

    # a run that uses the password (it stores to redis), with a report, receipt and metrics
    first = cli("run", "-v", "--sign", "--output", "receipt.json", "--report", "report.json",
                "--metrics-file", "metrics.prom", codes=(1,))
    assert "pushing metrics to" in first.stderr  # the WARN line with the Pushgateway URL
    report = json.loads((project / "report.json").read_text())
    assert report["cache"]["redis"]["stored_bytes"] > 0  # the password did authenticate
    assert (project / "trace.jsonl").stat().st_size > 0
    # OTLP with a key in the URL and an Authorization header, exporting to a dead port
    cli("run", "-vv", "--step", "build", env=otlp)
    cli("run", "--dry-run")
    cli("run", "--dry-run", "--format", "json")
    for args in (("config", "show"), ("config", "show", "--origin"),
                 ("config", "show", "--format", "json", "--origin"),
                 ("config", "get", "cache.endpoint"),
                 ("config", "get", "monitoring.prometheus.pushgateway"), ("config", "list"),
                 ("config", "list", "--format", "json"), ("history",),
                 ("history", "--format", "json")):
        cli(*args, env=otlp)
    cli("verify", "receipt.json", codes=(0, 1))
    for args in (("cache", "stats"), ("cache", "stats", "--format", "json"), ("cache", "verify"),
                 ("cache", "explain", "build")):
        cli(*args, codes=(0, 1))
    health = cli("health")
    assert "redis" in health.stdout and "healthy" in health.stdout
    cli("health", "--format", "json")
    port = free_port()
    server = start_attest(project, "serve", "--endpoint", f"127.0.0.1:{port}",
                          env={"ATTEST_LOG_FORMAT": "json"})
    try:
        assert wait_for_port(port, 20), stop(server)
        code, body = get(f"http://127.0.0.1:{port}/health/ready")
        outputs.append(body)
        assert code == 200 and "redis" in body, body
        outputs.append(get(f"http://127.0.0.1:{port}/metrics")[1])
    finally:
        outputs.extend(stop(server))
    # the cache goes down: a WARN line about the unreachable endpoint, health unhealthy
    redis_proc.kill()
    redis_proc.wait()
    (project / "src.txt").write_text("changed\n")
    down = cli("run", "-v", codes=(1,))
    assert "redis" in down.stderr
    outputs.append(cli("health", codes=(1,)).stdout)
    outputs.append(cli("health", "--format", "json", codes=(1,)).stdout)
    required = cli("run", env={"ATTEST_CACHE__REQUIRED": "true"}, codes=(1,))
    assert "unreachable" in required.stderr
    for args in (("cache", "stats"), ("cache", "verify")):
        cli(*args, codes=(0, 1, 2))

    leaks = [(secret, i) for secret in SECRETS for i, text in enumerate(outputs)
             if secret in text]
    assert leaks == [], [outputs[i][max(0, outputs[i].find(s) - 200):outputs[i].find(s) + 80]
                         for s, i in leaks]
    leaked_files = []
    for path in project.rglob("*"):
        if path.is_file() and path.name != "attest.yaml":
            data = path.read_bytes()
            leaked_files += [(str(path.relative_to(project)), s) for s in SECRETS
                             if s.encode() in data]
    assert leaked_files == []
    assert "***@127.0.0.1" in "".join(outputs)  # the URLs are still shown, redacted
