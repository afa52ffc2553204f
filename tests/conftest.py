"""Fixtures for every test folder: a project directory and the real servers tests share
(redis-server, moto's S3 over HTTP); each picks a free loopback port, so they are safe
under pytest-xdist."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import free_port, require_binary, wait_for_port


@pytest.fixture(autouse=True)
def _own_user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test, and every attest it starts, has a user cache directory of its own
    (``$XDG_CACHE_HOME``): never the developer's, never another test's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / ".user-cache"))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty project directory (steps run here; state goes to .attest/)."""
    root = tmp_path / "proj"
    root.mkdir()
    return root


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    binary = require_binary("redis-server")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for_port(port), "redis-server did not start"
        yield port, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.fixture
def s3_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()

