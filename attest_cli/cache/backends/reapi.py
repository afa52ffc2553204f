"""REAPI backend (``cache.backend: reapi``): steps as Actions in a REAPI v2 Action Cache.

Unlike the key-value remotes, a step is stored the way Bazel, Buildbarn or BuildGrid
clients store theirs: its Command (``/bin/sh -c RUN``, the variables its key covers, its
output paths) and its input root (the declared inputs as Directory protos) go into the CAS,
its Action (with attest's own cache key as ``salt``: :mod:`attest_cli.reapi.action`) is
the Action Cache key, and the ActionResult holds the output files, the log (as stdout) and
the exit code. attest's own BLAKE3 key still names the entry in the local tier.

Every call is bounded like the other remotes: ``cache.timeout`` is each call's total
deadline, Ctrl-C cuts a call short (:func:`.bounded.interrupt_calls`), what the server
sends is checked before it is written (:mod:`attest_cli.reapi.results`), and failures are
:class:`BackendUnavailable` for the circuit breaker. Read-only (``cache.mode: read-only``)
sends no mutating call at all: no BatchUpdateBlobs, no ByteStream Write, no
UpdateActionResult (and no FindMissingBlobs either, as nothing would follow it).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from attest_cli.cache.backends.base import BackendUnavailable, StoredObject
from attest_cli.cache.backends.bounded import DEFAULT_MAX_ENTRY_SIZE, interrupted
from attest_cli.cache.manifest import OutputFile
from attest_cli.reapi import action as actions
from attest_cli.reapi import capabilities, merkle, results
from attest_cli.reapi.action_cache import ActionCache
from attest_cli.reapi.cas import Cas
from attest_cli.reapi.channel import Endpoint, Remote
from attest_cli.reapi.errors import ReapiUnavailable
from attest_cli.reapi.protos import re_pb2

log = logging.getLogger("attest.cache")
T = TypeVar("T")


class NoAction(Exception):
    """The step's inputs cannot be made an input root: the REAPI tier skips the step."""


@dataclass(frozen=True)
class Hit:
    """What a lookup restored: the files (with attest's digests) and the step's log."""

    files: list[OutputFile]
    log: bytes
    exit_code: int
    action_digest: str


class ReapiBackend:
    """The key-value interface is empty (nothing is stored by attest key); a step is looked
    up and stored through :meth:`lookup` and :meth:`store`."""

    name = "reapi"
    step_aware = True  # ContentCache asks lookup/store rather than get/put

    def __init__(self, endpoint: Endpoint, *, max_entry_size: int = DEFAULT_MAX_ENTRY_SIZE,
                 read_only: bool = False) -> None:
        self.endpoint = endpoint
        self.max_entry_size = max_entry_size
        self.read_only = read_only
        self.where = f"REAPI server {endpoint.shown}"
        self._lock = threading.Lock()
        self._opened: tuple[Remote, Cas, ActionCache] | None = None
        self.limits = results.Limits(max_total_bytes=max_entry_size)

    # -- plumbing ------------------------------------------------------------------------
    def _open(self) -> tuple[Remote, Cas, ActionCache]:
        """The channel and the server's capabilities, asked once (GetCapabilities)."""
        with self._lock:
            if self._opened is None:
                remote = Remote(self.endpoint, interrupted=interrupted)
                try:
                    caps = capabilities.fetch(remote)
                except BaseException:
                    remote.close()
                    raise
                self._opened = (remote, Cas(remote, caps),
                                ActionCache(remote, caps.digest_function.value))
            return self._opened

    def _do(self, fn: Callable[[], T]) -> T:
        if interrupted():
            raise BackendUnavailable(f"{self.where}: not called, the run was interrupted")
        try:
            return fn()
        except ReapiUnavailable as exc:
            raise BackendUnavailable(str(exc)) from None

    def _action(self, root: Path, spec: actions.ActionSpec, inputs: Sequence[str],
                known: Mapping[str, str] | None) -> tuple[actions.BuiltAction, merkle.InputRoot]:
        """The step's Action; :class:`NoAction` when its inputs cannot make an input root
        (an unreadable file, a file that is not a regular one, too many files)."""
        _, cas, _ = self._open()
        try:
            tree = merkle.build(root, inputs, cas.fn, known=known)
        except (merkle.InputError, OSError) as exc:
            raise NoAction(str(exc)) from None
        return actions.build(spec, tree.digest, cas.fn), tree

    # -- the step-aware interface --------------------------------------------------------
    def lookup(self, root: Path, spec: actions.ActionSpec, inputs: Sequence[str], *,
               allowed: Callable[[str], bool], sink: Callable[[str, bytes], None],
               known: Mapping[str, str] | None = None) -> Hit | None:
        """Restore the step's outputs from its ActionResult, or ``None`` on a miss.

        :class:`~attest_cli.reapi.errors.UnsafeResult` when the result cannot be trusted
        (nothing outside the declared outputs is ever written). ``sink(digest, data)``
        receives every restored blob by attest's digest (for the local tier)."""
        def run() -> Hit | None:
            _, cas, ac = self._open()
            try:
                built, _ = self._action(root, spec, inputs, known)
            except NoAction as exc:
                log.debug("not looked up in the REAPI cache: %s", exc)
                return None
            result = ac.get(built.action_digest)
            if result is None:
                return None
            if result.exit_code != 0:
                return None  # attest caches successes only; a failure is never replayed
            planned = results.plan(result, cas, self.limits, allowed)
            stdout = results.read_log(cas, result.stdout_raw, result.stdout_digest)
            stderr = results.read_log(cas, result.stderr_raw, result.stderr_digest)
            files = results.restore(root, planned, cas, self.limits, sink=sink)
            return Hit(files=files, log=stdout + stderr, exit_code=result.exit_code,
                       action_digest=built.action_digest.hash)
        return self._do(run)

    def contains_step(self, root: Path, spec: actions.ActionSpec, inputs: Sequence[str],
                      known: Mapping[str, str] | None = None) -> tuple[bool, str]:
        """Whether the Action Cache has a result for the step; and its Action digest."""
        def run() -> tuple[bool, str]:
            _, _, ac = self._open()
            try:
                built, _ = self._action(root, spec, inputs, known)
            except NoAction as exc:
                return False, f"none ({exc})"
            result = ac.get(built.action_digest)
            return (result is not None and result.exit_code == 0,
                    f"{built.action_digest.hash}/{built.action_digest.size_bytes}")
        return self._do(run)

    def store(self, root: Path, spec: actions.ActionSpec, inputs: Sequence[str],
              files: Sequence[OutputFile], blobs: Mapping[str, bytes], log_bytes: bytes, *,
              exit_code: int, started: float, finished: float,
              known: Mapping[str, str] | None = None) -> int:
        """Upload the step's Action, input root, outputs and log, then its ActionResult;
        the bytes sent. Nothing at all is sent when read-only."""
        if self.read_only:
            log.debug("not storing in the REAPI cache: it is read-only")
            return 0

        def run() -> int:
            _, cas, ac = self._open()
            try:
                built, tree = self._action(root, spec, inputs, known)
            except NoAction as exc:
                log.warning("not stored in the REAPI cache: %s", exc)
                return 0
            result = re_pb2.ActionResult(exit_code=exit_code)
            uploads: list[tuple[Any, Any]] = [*built.blobs, *tree.blobs()]
            for f in files:
                if f.kind == "file":
                    data = blobs[f.digest]
                    digest = cas.fn.digest(data)
                    uploads.append((digest, data))
                    result.output_files.add(path=f.path, digest=digest,
                                            is_executable=bool(f.mode & 0o111))
                elif f.kind == "symlink":
                    result.output_symlinks.add(path=f.path, target=f.target or "")
                elif f.kind == "dir":
                    tree_digest, tree_bytes = cas.fn.message_digest(
                        re_pb2.Tree(root=re_pb2.Directory()))
                    uploads.append((tree_digest, tree_bytes))
                    result.output_directories.add(path=f.path, tree_digest=tree_digest)
            log_digest = cas.fn.digest(log_bytes)
            uploads.append((log_digest, log_bytes))
            result.stdout_digest.CopyFrom(log_digest)
            meta = result.execution_metadata
            meta.worker = f"attest@{socket.gethostname()}"
            for field, at in (("worker_start_timestamp", started),
                              ("execution_start_timestamp", started),
                              ("execution_completed_timestamp", finished),
                              ("worker_completed_timestamp", finished)):
                getattr(meta, field).FromNanoseconds(int(at * 1e9))
            try:
                sent = cas.upload(uploads)  # reads an input file only if the server lacks it
            except OSError as exc:
                log.warning("not stored in the REAPI cache: %s", exc)
                return 0
            ac.update(built.action_digest, result)
            return sent
        return self._do(run)

    # -- the key-value interface (maintenance commands) ----------------------------------
    def get(self, key: str) -> bytes | None:
        return None

    def put(self, key: str, data: bytes) -> bool:
        return False

    def contains(self, key: str) -> bool:
        return False

    def delete(self, key: str) -> None:
        return None

    def size(self) -> int:
        return 0

    def ping(self) -> None:
        """One GetCapabilities (the first call of every session anyway)."""
        self._do(self._open)

    def objects(self, prefix: str = "") -> Iterator[StoredObject]:
        return iter(())  # an Action Cache cannot be listed

    def close(self) -> None:
        with self._lock:
            if self._opened is not None:
                self._opened[0].close()
                self._opened = None
