"""A real BuildGrid (REAPI v2 Execution + CAS + Action Cache) with real worker processes.

BuildGrid 0.4's scheduler needs PostgreSQL: ``start_postgres`` runs ``initdb`` in a temp
dir and a private ``postgres`` on a free loopback port (its unix socket in the same dir).
PostgreSQL refuses to run as root, so when the tests run as root (containers, CI) the data
dir is handed to the ``postgres`` user (else ``nobody``) and the server runs as that user.
``start_buildgrid`` migrates the database and runs ``bgd server start`` with an in-memory
CAS and Action Cache, the SQL scheduler, and the Execution, Operations and Bots services.
``start_bot`` runs tests/reapi/bot.py as its own process group so a test can kill it.

Tests whose server cannot start are skipped with the reason, and fail under ``CI=true``
(``.ci/run`` installs PostgreSQL).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.reapi.servers import unavailable
from tests.support import free_port, wait_for

BOT = Path(__file__).with_name("bot.py")
#: Seconds BuildGrid waits to hear from a bot before it drops the session and requeues its
#: lease; the bot heartbeats every second. 5 s is above BuildGrid's floor of 3.75 s
#: (its long poll is 80 % of this and must exceed its 3 s network timeout).
KEEPALIVE_S = 5


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for base in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (base / name).exists():
            return str(base / name)
    return None


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _serve(argv: Callable[[int], list[str]], log: Path, timeout: float,
           **popen: Any) -> tuple[subprocess.Popen[bytes], int] | None:
    """Start a server on a free loopback port; retry on a new port when it exits instead of
    listening (another process took the port between the probe and the bind)."""
    for _ in range(5):
        port = free_port()
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv(port), stdout=out, stderr=subprocess.STDOUT, **popen)

        def settled(proc: subprocess.Popen[bytes] = proc, port: int = port) -> bool:
            return proc.poll() is not None or _listening(port)

        if wait_for(settled, timeout) and proc.poll() is None:
            time.sleep(0.1)
            if proc.poll() is None:
                return proc, port
        _stop(proc)
    return None


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 10) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


@dataclass
class Postgres:
    root: Path
    port: int
    proc: subprocess.Popen[bytes]

    databases: int = 0

    def new_database(self) -> str:
        """The URL of a new empty database: each BuildGrid gets its own job and bot tables."""
        import psycopg2

        self.databases += 1
        name = f"bgd{self.databases}"
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="bgd", dbname="postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE {name}")
        finally:
            conn.close()
        return f"postgresql+psycopg2://bgd@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        _stop(self.proc, signal.SIGINT)  # "fast" shutdown


def start_postgres() -> Postgres:
    initdb, postgres = _pg_bin("initdb"), _pg_bin("postgres")
    if not initdb or not postgres:
        unavailable("PostgreSQL (initdb, postgres) is not installed")
    assert initdb and postgres
    # as root the server runs as another user, who must reach the directory: /tmp, not a
    # TMPDIR that may sit below root's own (mode 0700) home
    root = Path(tempfile.mkdtemp(prefix="attest-pg-", dir="/tmp" if os.geteuid() == 0 else None))
    run_as: dict[str, Any] = {}
    if os.geteuid() == 0:  # postgres refuses root: run it as an unprivileged user
        for name in ("postgres", "nobody"):
            try:
                user = pwd.getpwnam(name)
            except KeyError:
                continue
            os.chown(root, user.pw_uid, user.pw_gid)
            run_as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
            break
    init = subprocess.run([initdb, "-D", str(root / "data"), "-U", "bgd", "--auth=trust",
                           "-E", "UTF8", "--no-sync"], capture_output=True, text=True,
                          cwd=root, **run_as)
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        unavailable(f"initdb failed: {init.stderr.strip()[-300:]}")
    started = _serve(
        lambda port: [postgres, "-D", str(root / "data"), "-p", str(port), "-k", str(root),
                      "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                      "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
        root / "postgres.log", 20, cwd=root, **run_as)
    if started:
        return Postgres(root, started[1], started[0])
    log = (root / "postgres.log").read_text(errors="replace")[-300:]
    shutil.rmtree(root, ignore_errors=True)
    unavailable(f"postgres did not start: {log}")
    raise AssertionError("unreachable")


CONFIG = """\
server:
  - !channel
    address: "127.0.0.1:{port}"
    insecure-mode: true
authorization:
  method: none
monitoring:
  enabled: false
connections:
  - !sql-connection &sql
    connection-string: {sql_url}
    pool-size: 5
    max-overflow: 5
storages:
  - !lru-storage &cas
    size: 256MB
caches:
  - !lru-action-cache &ac
    storage: *cas
    max-cached-refs: 4096
    allow-updates: true
    cache-failed-actions: false
schedulers:
  - !sql-scheduler &sched
    sql: *sql
    storage: *cas
    action-cache: *ac
    property-set: !dynamic-property-set
      match-property-keys: [OSFamily, ISA, pool]
    bot-session-keepalive-timeout: {keepalive}
    session-expiry-timer-interval: 1
    poll-interval: 0.1
    bot-poll-interval: 0.1
    max-job-attempts: 3
    assigners:
      - !priority-age-assigner
        count: 1
        interval: 0.1
instances:
  - name: "{instance}"
    services:
      - !action-cache
        cache: *ac
      - !execution
        scheduler: *sched
        operation-stream-keepalive-timeout: 2
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
thread-pool-size: 20
"""


@dataclass
class BuildGrid:
    root: Path
    port: int
    proc: subprocess.Popen[bytes]
    instance: str
    bots: list[Bot] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"grpc://127.0.0.1:{self.port}"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log(self) -> str:
        return (self.root / "bgd.log").read_text(errors="replace")

    def stop(self) -> None:
        for bot in self.bots:
            bot.kill()
        _stop(self.proc, signal.SIGINT)


def _bgd() -> str:
    return str(Path(sys.executable).with_name("bgd"))


def start_buildgrid(pg: Postgres, root: Path, instance: str = "") -> BuildGrid:
    try:
        import buildgrid  # noqa: F401
        import psycopg2  # noqa: F401
    except ImportError as exc:
        unavailable(f"buildgrid/psycopg2 not installed ({exc}); pip install -e .[dev]")
    root.mkdir(parents=True, exist_ok=True)
    sql_url = pg.new_database()
    migrate = subprocess.run([_bgd(), "migrate", "apply", sql_url], capture_output=True,
                             text=True, timeout=120)
    if migrate.returncode != 0:
        unavailable(f"bgd migrate failed: {migrate.stderr.strip()[-300:]}")

    def argv(port: int) -> list[str]:
        config = root / f"bgd-{port}.yml"
        config.write_text(CONFIG.format(port=port, sql_url=sql_url, keepalive=KEEPALIVE_S,
                                        instance=instance), encoding="utf-8")
        return [_bgd(), "server", "start", str(config)]

    started = _serve(argv, root / "bgd.log", 60, cwd=root)
    if started:
        return BuildGrid(root, started[1], started[0], instance)
    unavailable(f"bgd server did not start: {(root / 'bgd.log').read_text()[-400:]}")
    raise AssertionError("unreachable")


@dataclass
class Bot:
    worker_id: str
    proc: subprocess.Popen[bytes]
    lease_log: Path
    output: Path

    def leases(self) -> list[list[str]]:
        """The leases this bot started, one ``[lease id, action hash, worker]`` each."""
        if not self.lease_log.exists():
            return []
        return [line.split("\t") for line in self.lease_log.read_text().splitlines()]

    def wait_ready(self, timeout: float = 60) -> None:
        """Return once the bot holds a session, so work queued now reaches it.

        A bot that imports grpc and BuildGrid can take seconds to start on a loaded CI
        machine; a step with a short queue timeout would expire before it got there.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.output.read_text(errors="replace") if self.output.exists() else ""
            if "bot: session " in text:
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"bot {self.worker_id} exited: {text[-2000:]}")
            time.sleep(0.05)
        raise AssertionError(f"bot {self.worker_id} opened no session in {timeout:.0f}s")

    def kill(self) -> None:
        """SIGKILL the bot and the command it is running (its own process group)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


def start_bot(grid: BuildGrid, worker_id: str, *, properties: dict[str, str] | None = None,
              lease_log: Path | None = None, extra_outputs: tuple[str, ...] = (),
              ready: bool = True) -> Bot:
    """A bot process; with ``ready`` (the default), one that already holds a session."""
    log = lease_log or grid.root / f"{worker_id}.leases"
    work = grid.root / f"{worker_id}-work"
    argv = [sys.executable, str(BOT), "--endpoint", grid.target, "--instance", grid.instance,
            "--worker-id", worker_id, "--lease-log", str(log), "--work-root", str(work)]
    for rel in extra_outputs:
        argv += ["--extra-output", rel]
    for key, value in (properties or {"OSFamily": "linux"}).items():
        argv += ["--property", f"{key}={value}"]
    env = {k: v for k, v in os.environ.items() if k != "WORKER_ID"}
    output = grid.root / f"{worker_id}.log"
    with open(output, "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    bot = Bot(worker_id, proc, log, output)
    grid.bots.append(bot)
    if ready:
        bot.wait_ready()
    return bot


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    pg = start_postgres()
    try:
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(pg.root, ignore_errors=True)


@pytest.fixture
def grid(postgres: Postgres, tmp_path: Path) -> Iterator[BuildGrid]:
    """A fresh BuildGrid server (empty CAS and Action Cache) with no bots yet."""
    grid = start_buildgrid(postgres, tmp_path / "bgd")
    try:
        yield grid
    finally:
        grid.stop()
