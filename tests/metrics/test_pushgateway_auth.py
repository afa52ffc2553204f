"""A Pushgateway behind basic auth, configured as ``http://user:password@host:port``.

urllib would resolve ``user:password@host`` as a host name; the credentials must travel as
an ``Authorization`` header and never appear in what attest prints.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from attest_cli.metrics.pushgateway import split_credentials
from tests.metrics.helpers import samples
from tests.support import attest, require_binary, serve_on_free_port, write_pipeline

PASSWORD = "s3cret-push"
# bcrypt of PASSWORD (cost 4): the Pushgateway's web config stores only the hash
BCRYPT = "$2b$04$1rl8/ell/04yGpHSvLvjBOaalsUvjOKPvtvnLH/hX0mf6ze1coWyW"


@pytest.fixture
def guarded_gateway(tmp_path: Path) -> Iterator[int]:
    binary = require_binary("prometheus-pushgateway")
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  ci: '{BCRYPT}'\n")
    proc, port = serve_on_free_port(lambda port: [
        binary, f"--web.listen-address=127.0.0.1:{port}",
        # Debian's build persists to /var/lib/prometheus by default: one store per test
        f"--persistence.file={tmp_path / 'pushgateway.data'}", f"--web.config.file={web}"],
        cwd=tmp_path)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def _metrics(port: int, user: str, password: str) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                     headers={"Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def test_a_push_to_a_gateway_behind_basic_auth_uses_the_url_credentials(
        project: Path, guarded_gateway: int) -> None:
    write_pipeline(project, "name: demo\nsteps:\n  a: {run: 'true'}\n")
    good = {"ATTEST_MONITORING__PROMETHEUS__PUSHGATEWAY":
            f"http://ci:{PASSWORD}@127.0.0.1:{guarded_gateway}"}
    ok = attest("run", "--log-format", "text", cwd=project, env=good)
    assert ok.returncode == 0, ok.stderr
    assert "pushing metrics" not in ok.stderr, ok.stderr
    status, text = _metrics(guarded_gateway, "ci", PASSWORD)
    assert status == 200
    assert samples(text)[
        'attest_pipeline_executions_total{instance="' + _instance(text) +
        '",job="attest",pipeline="demo",status="success"}'] == 1

    wrong = {"ATTEST_MONITORING__PROMETHEUS__PUSHGATEWAY":
             f"http://ci:wrong-{PASSWORD}@127.0.0.1:{guarded_gateway}"}
    bad = attest("run", "--log-format", "text", cwd=project, env=wrong)
    assert bad.returncode == 0  # a failed push never changes the run's outcome
    warnings = [ln for ln in bad.stderr.splitlines() if "pushing metrics" in ln]
    assert len(warnings) == 1 and "401" in warnings[0], bad.stderr
    assert PASSWORD not in bad.stderr + bad.stdout


def _instance(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("attest_pipeline_executions_total{"):
            return line.split('instance="', 1)[1].split('"', 1)[0]
    raise AssertionError("no executions pushed")


@pytest.mark.parametrize(("url", "plain", "auth"), [
    ("http://127.0.0.1:9091", "http://127.0.0.1:9091", None),
    ("http://ci:pw@127.0.0.1:9091/base", "http://127.0.0.1:9091/base", "ci:pw"),
    ("https://ci:p%40ss@[::1]:9091", "https://[::1]:9091", "ci:p@ss"),
    ("http://token@gw.example", "http://gw.example", "token:"),
])
def test_split_credentials(url: str, plain: str, auth: str | None) -> None:
    bare, headers = split_credentials(url)
    assert bare == plain
    if auth is None:
        assert headers == {}
    else:
        assert headers == {"Authorization":
                           "Basic " + base64.b64encode(auth.encode()).decode()}
