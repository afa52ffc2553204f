"""Shared test helpers: run the real CLI in a subprocess, find binaries and free ports."""

from __future__ import annotations

import os
import pty
import select
import shutil
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from attest_cli.cache.backends.entry_table import TABLE_FILE

REPO = Path(__file__).resolve().parent.parent


def attest(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120,
           input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m attest_cli ARGS`` as a user would; never through in-process shortcuts."""
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("ATTEST_", "OTEL_", "TRACEPARENT", "TRACESTATE",
                                     "GITHUB_"))}
    full_env["XDG_CONFIG_HOME"] = str(cwd / ".xdg")  # never read the developer's config
    full_env.pop("CI", None)
    if env:
        full_env.update(env)
    return subprocess.run([sys.executable, "-m", "attest_cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, input=input)


def write_pipeline(root: Path, text: str, name: str = "attest.yaml") -> Path:
    path = root / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def require_binary(name: str) -> str:
    """The binary's path; skip with a reason when missing, but fail under CI=true."""
    path = shutil.which(name)
    if path:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} is required under CI=true (.ci/run installs it)")
    pytest.skip(f"{name} not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def wait_for_port(port: int, timeout: float = 10.0) -> bool:
    def up() -> bool:
        with socket.socket() as s:
            s.settimeout(0.2)
            return s.connect_ex(("127.0.0.1", port)) == 0
    return wait_for(up, timeout)


def run_in_pty(args: list[str], cwd: Path, timeout: float = 30,
               extra_env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run attest attached to a pseudo-terminal, as at an interactive shell."""
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "GITHUB_ACTIONS", "NO_COLOR")}
    env.update({"TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40",
                "XDG_CONFIG_HOME": str(cwd / ".xdg")})
    env.update(extra_env or {})
    proc = subprocess.Popen([sys.executable, "-m", "attest_cli", *args], cwd=cwd, env=env,
                            stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    proc.wait(timeout=5)
    os.close(master)
    return proc.returncode, b"".join(chunks).decode("utf-8", "replace")



def serve_on_free_port(argv: Callable[[int], list[str]], *, cwd: Path, tries: int = 5,
                       timeout: float = 20.0) -> tuple[subprocess.Popen[bytes], int]:
    """Start a server on a free loopback port and make sure *it* is the one listening.

    ``free_port`` closes its probe socket before the server binds, so another process (a
    parallel test worker) can take the port in between; the server then fails to bind
    while ``wait_for_port`` happily connects to the other one. A server that exited is
    started again on a new port."""
    for _ in range(tries):
        port = free_port()
        proc = subprocess.Popen(argv(port), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, cwd=cwd)
        def settled(proc: subprocess.Popen[bytes] = proc, port: int = port) -> bool:
            return proc.poll() is not None or _listening(port)

        if wait_for(settled, timeout) and proc.poll() is None:
            # listening and alive: still alive a moment later means the bind was its own
            time.sleep(0.05)
            if proc.poll() is None:
                return proc, port
        proc.kill()
        proc.wait(10)
    raise AssertionError(f"could not start {argv(0)[0]} on a free port in {tries} tries")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


# -- the local cache's entry table (attest_cli/cache/backends/entry_table.py) ---------------

def _entry_table(cache: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(cache / TABLE_FILE, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def cache_entries(cache: Path) -> dict[str, bytes]:
    """The manifests of the local cache directory ``cache``, by entry key."""
    if not (cache / TABLE_FILE).exists():
        return {}
    conn = _entry_table(cache)
    try:
        return {key.removeprefix("entries/"): data for key, data in
                conn.execute("SELECT key, data FROM objects WHERE key LIKE 'entries/%'")}
    finally:
        conn.close()


def write_cache_entry(cache: Path, key: str, data: bytes | None = None,
                      used: float | None = None) -> None:
    """Replace the manifest of entry ``key`` and/or set its last-used time."""
    conn = _entry_table(cache)
    try:
        if data is not None:
            conn.execute("UPDATE objects SET data = ? WHERE key = ?", (data, f"entries/{key}"))
        if used is not None:
            conn.execute("UPDATE objects SET used = ? WHERE key = ?", (used, f"entries/{key}"))
    finally:
        conn.close()


def delete_cache_entry(cache: Path, key: str) -> None:
    """Evict entry ``key`` as another process would (its blobs stay)."""
    conn = _entry_table(cache)
    try:
        conn.execute("DELETE FROM objects WHERE key = ?", (f"entries/{key}",))
    finally:
        conn.close()


def entry_of_step(cache: Path, step: str) -> tuple[str, dict[str, Any]]:
    """The key and manifest of the (one) entry stored for ``step``."""
    import json

    found = [(k, json.loads(v)) for k, v in cache_entries(cache).items()
             if json.loads(v)["step"] == step]
    assert len(found) == 1, found
    return found[0]
