"""A minimal Remote Workers API bot: the worker half of a BuildGrid deployment, for tests.

BuildGrid no longer ships a worker, so the end-to-end tests run this one as a separate
process (so a test can kill it mid-step). It opens a BotSession, takes one lease at a time,
fetches the Action, its Command and input root from the CAS, runs the command in a fresh
directory, uploads the outputs and stdout/stderr, and completes the lease with an
ActionResult whose ExecutedActionMetadata names this worker.

Every lease it starts is appended to ``--lease-log`` (one line: lease id, action hash,
worker id) before the command runs, so a test can count leases: an Action Cache hit must
add none. The worker's own ``WORKER_ID`` is added to each command's environment: it is the
one thing only the worker has, so a step's output shows where it ran.

Run: ``python tests/reapi/bot.py --endpoint 127.0.0.1:PORT --worker-id bot-1 --lease-log F``
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import grpc
from buildgrid._protos.build.bazel.remote.execution.v2.remote_execution_pb2 import (
    Action,
    ActionResult,
    Command,
    Digest,
    ExecutedActionMetadata,
    OutputDirectory,
    OutputFile,
    OutputSymlink,
)
from buildgrid._protos.google.devtools.remoteworkers.v1test2 import bots_pb2, bots_pb2_grpc
from buildgrid._protos.google.rpc import code_pb2
from buildgrid.server.client.cas import download, upload

#: How often the bot reports in while a lease runs. BuildGrid drops a session that is silent
#: for its ``bot-session-keepalive-timeout`` (5 s in tests/reapi/buildgrid_server.py).
HEARTBEAT_S = 1.0
#: The deadline of one UpdateBotSession long poll (the server answers after at most 80 % of
#: its keepalive timeout when there is no work).
POLL_DEADLINE_S = 10.0
#: Answers after which the bot asks again rather than giving up.
_RETRY = (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class LeaseRun:
    """One lease executing on a thread; ``result`` is set when it is done."""

    def __init__(self, channel: grpc.Channel, instance: str, lease: bots_pb2.Lease,
                 worker_id: str, work_root: Path, extra_outputs: list[str]) -> None:
        self.channel = channel
        self.extra_outputs = extra_outputs
        self.instance = instance
        self.lease = lease
        self.worker_id = worker_id
        self.work_root = work_root
        self.result: ActionResult | None = None
        self.status_code = code_pb2.OK
        self.status_message = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.cancelled = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def cancel(self) -> None:
        self.cancelled.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()

    def _run(self) -> None:
        try:
            self.result = self._execute()
        except Exception as exc:  # a broken lease must not take the bot down
            self.status_code = code_pb2.INTERNAL
            self.status_message = f"{type(exc).__name__}: {exc}"
        finally:
            self.done.set()

    def _action(self) -> Action:
        payload = self.lease.payload
        if payload.Is(Action.DESCRIPTOR):
            action = Action()
            payload.Unpack(action)
            return action
        digest = Digest()
        payload.Unpack(digest)
        with download(self.channel, instance=self.instance) as dl:
            return dl.get_message(digest, Action())

    def _execute(self) -> ActionResult:
        meta = ExecutedActionMetadata(worker=self.worker_id)
        meta.worker_start_timestamp.FromDatetime(_now())
        action = self._action()
        root = Path(tempfile.mkdtemp(prefix="lease-", dir=self.work_root))
        try:
            meta.input_fetch_start_timestamp.FromDatetime(_now())
            with download(self.channel, instance=self.instance) as dl:
                command = dl.get_message(action.command_digest, Command())
                if action.input_root_digest.size_bytes:
                    dl.download_directory(action.input_root_digest, str(root / "in"))
                else:  # the empty Directory: the empty blob, which no CAS need store
                    (root / "in").mkdir()
            meta.input_fetch_completed_timestamp.FromDatetime(_now())
            cwd = root / "in" / command.working_directory
            cwd.mkdir(parents=True, exist_ok=True)
            outputs = list(command.output_paths) or [*command.output_files,
                                                     *command.output_directories]
            for rel in outputs:  # REAPI: the worker creates the parents of each output path
                (cwd / rel).parent.mkdir(parents=True, exist_ok=True)
            env = {v.name: v.value for v in command.environment_variables}
            env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
            env["WORKER_ID"] = self.worker_id
            timeout = action.timeout.ToTimedelta().total_seconds() or None
            meta.execution_start_timestamp.FromDatetime(_now())
            with open(root / "stdout", "wb") as out, open(root / "stderr", "wb") as err:
                self.proc = subprocess.Popen(list(command.arguments), cwd=cwd, env=env,
                                             stdout=out, stderr=err, stdin=subprocess.DEVNULL)
                if self.cancelled.is_set():
                    self.proc.kill()
                try:
                    exit_code = self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    exit_code = self.proc.wait()
                    self.status_code = code_pb2.DEADLINE_EXCEEDED
                    self.status_message = f"action timed out after {timeout} s"
            meta.execution_completed_timestamp.FromDatetime(_now())
            meta.output_upload_start_timestamp.FromDatetime(_now())
            result = ActionResult(exit_code=exit_code)
            with upload(self.channel, instance=self.instance) as up:
                for rel in outputs:
                    path = cwd / rel
                    if path.is_symlink():
                        result.output_symlinks.append(
                            OutputSymlink(path=rel, target=os.readlink(path)))
                    elif path.is_file():
                        digest = up.upload_file(str(path), queue=False)
                        result.output_files.append(OutputFile(
                            path=rel, digest=digest, is_executable=os.access(path, os.X_OK)))
                    elif path.is_dir():
                        tree = up.upload_tree(str(path), queue=False)
                        result.output_directories.append(
                            OutputDirectory(path=rel, tree_digest=tree))
                for rel in self.extra_outputs:  # a hostile worker (tests)
                    digest = up.put_blob(io.BytesIO(b"planted\n"), queue=False)
                    result.output_files.append(OutputFile(path=rel, digest=digest))
                for name, field in (("stdout", result.stdout_digest),
                                    ("stderr", result.stderr_digest)):
                    with open(root / name, "rb") as blob:
                        field.CopyFrom(up.put_blob(blob, queue=False))
            meta.output_upload_completed_timestamp.FromDatetime(_now())
            meta.worker_completed_timestamp.FromDatetime(_now())
            result.execution_metadata.CopyFrom(meta)
            return result
        finally:
            shutil.rmtree(root, ignore_errors=True)


class Bot:
    def __init__(self, endpoint: str, instance: str, worker_id: str, lease_log: Path,
                 work_root: Path, properties: list[tuple[str, str]],
                 extra_outputs: list[str] | None = None) -> None:
        self.extra_outputs = extra_outputs or []
        self.channel = grpc.insecure_channel(endpoint)
        self.stub = bots_pb2_grpc.BotsStub(self.channel)
        self.instance = instance
        self.worker_id = worker_id
        self.lease_log = lease_log
        self.work_root = work_root
        self.properties = properties
        self.running: dict[str, LeaseRun] = {}
        self.stop = threading.Event()

    def _new_session(self) -> bots_pb2.BotSession:
        session = bots_pb2.BotSession(bot_id=self.worker_id, status=bots_pb2.OK)
        device = session.worker.devices.add(handle=self.worker_id)
        for key, value in self.properties:
            device.properties.add(key=key, value=value)
        return self.stub.CreateBotSession(
            bots_pb2.CreateBotSessionRequest(parent=self.instance, bot_session=session),
            timeout=POLL_DEADLINE_S)

    def _open_session(self) -> bots_pb2.BotSession:
        """A new session, asked for until the server answers (a loaded machine can starve
        the bot past a deadline: it must not die of it, or a run waits for it forever)."""
        while True:
            try:
                session = self._new_session()
                print(f"bot: session {session.name}", flush=True)
                return session
            except grpc.RpcError as exc:
                if exc.code() not in _RETRY or self.stop.is_set():
                    raise
                print(f"bot: creating a session: {exc.code().name}; again", flush=True)
                time.sleep(0.2)

    def serve(self) -> None:
        session = self._open_session()
        while not self.stop.is_set():
            self._take_new_leases(session)
            self._report_finished(session)
            busy = bool(self.running)
            try:
                session = self.stub.UpdateBotSession(
                    bots_pb2.UpdateBotSessionRequest(name=session.name, bot_session=session),
                    timeout=POLL_DEADLINE_S)
            except grpc.RpcError as exc:
                if exc.code() in _RETRY:
                    time.sleep(0.2)
                    continue
                # The server dropped the session (silent past its keepalive: a starved
                # bot): its leases went back to the queue. Start over, as a real bot does.
                print(f"bot: session {session.name} lost ({exc.code().name}: {exc.details()});"
                      " a new one", flush=True)
                for run in self.running.values():
                    run.cancel()
                self.running.clear()
                session = self._open_session()
                continue
            self._drop_cancelled(session)
            if busy:
                self._wait_for_any(HEARTBEAT_S)

    def _take_new_leases(self, session: bots_pb2.BotSession) -> None:
        for lease in session.leases:
            if lease.state != bots_pb2.LeaseState.ACTIVE or lease.id in self.running:
                continue
            if lease.payload.Is(Action.DESCRIPTOR):
                action_hash = hashlib.sha256(lease.payload.value).hexdigest()
            else:
                digest = Digest()
                lease.payload.Unpack(digest)
                action_hash = digest.hash
            with open(self.lease_log, "a", encoding="utf-8") as log:
                log.write(f"{lease.id}\t{action_hash}\t{self.worker_id}\n")
            run = LeaseRun(self.channel, self.instance, lease, self.worker_id, self.work_root,
                           self.extra_outputs)
            self.running[lease.id] = run
            run.start()

    def _report_finished(self, session: bots_pb2.BotSession) -> None:
        for lease in session.leases:
            run = self.running.get(lease.id)
            if run is None or not run.done.is_set():
                continue
            lease.state = bots_pb2.LeaseState.COMPLETED
            lease.status.code = run.status_code
            lease.status.message = run.status_message
            if run.result is not None:
                lease.result.Pack(run.result)
            del self.running[lease.id]

    def _drop_cancelled(self, session: bots_pb2.BotSession) -> None:
        live = {lease.id for lease in session.leases}
        for lease_id in [i for i in self.running if i not in live]:
            self.running.pop(lease_id).cancel()

    def _wait_for_any(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stop.is_set():
            if any(run.done.is_set() for run in self.running.values()):
                return
            time.sleep(0.02)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True, help="host:port of the Bots service")
    parser.add_argument("--instance", default="")
    parser.add_argument("--worker-id", required=True)
    parser.add_argument("--lease-log", required=True, type=Path)
    parser.add_argument("--work-root", type=Path, default=None)
    parser.add_argument("--property", action="append", default=[],
                        help="KEY=VALUE platform property of this worker (repeatable)")
    parser.add_argument("--extra-output", action="append", default=[],
                        help="a hostile worker: also return this output path (repeatable)")
    args = parser.parse_args(argv)
    work_root = args.work_root or Path(tempfile.mkdtemp(prefix=f"{args.worker_id}-"))
    work_root.mkdir(parents=True, exist_ok=True)
    props = [tuple(p.split("=", 1)) for p in args.property]
    bot = Bot(args.endpoint, args.instance, args.worker_id, args.lease_log, work_root,
              [(k, v) for k, v in props], args.extra_output)
    signal.signal(signal.SIGTERM, lambda *_: bot.stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        bot.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
