"""The step cache the scheduler calls: key, lookup + restore, store; local tier under a remote.

Lookups try the local directory first, then the remote backend (Redis or S3) if one is
configured; a remote hit is copied into the local tier on the way. Stores go to the local
tier and, unless ``cache.mode`` is ``read-only``, to the remote. Remote trouble never fails
a step: the circuit breaker (:mod:`.backends.guard`) warns once and the lookup is a miss.
A corrupt or malformed entry is a miss with one warning; it is deleted from the tier it
came from unless that is a read-only remote, which is never written nor deleted from.

Counting: a lookup counts once, however many tiers it asked. A hit counts for the backend
that answered (``local``, ``redis``, ``s3``; a local miss then a remote hit is one remote
hit, no local miss); a miss in every tier is one miss for the configured backend (the last
one asked). The metrics read the same attribution from ``CacheChecked.backend``.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import stat as stat_mod
import threading
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, cast

from attest_cli.cache import reapi_tier
from attest_cli.cache import store as entries
from attest_cli.cache.backends.base import BackendUnavailable, CacheBackend
from attest_cli.cache.backends.guard import GuardedBackend
from attest_cli.cache.backends.local import LocalBackend, sync_filesystem
from attest_cli.cache.fresh import FreshIndex, Vouchers
from attest_cli.cache.inputs import (
    InputWalk,
    input_paths,
    input_states,
    is_special,
    key_inputs,
)
from attest_cli.cache.keys import (
    KeyParts,
    build_parts,
    explain_changes,
    key_env,
    undeclared_variables,
)
from attest_cli.cache.manifest import (
    EMPTY_DIGEST,
    CorruptEntry,
    Manifest,
    OutputFile,
    check_link,
    inline_small,
)
from attest_cli.cache.manifest import LIMITS as MANIFEST_LIMITS
from attest_cli.cache.outputs import describe, output_digest
from attest_cli.cache.records import StepRecords
from attest_cli.cache.restore import (
    UnsafeRestore,
    process_umask,
    restore_files,
    restored_mode,
)
from attest_cli.cache.statindex import FileState, StatIndex, read_whole
from attest_cli.digest import bytes_digest
from attest_cli.engine.interfaces import CacheDecision, StepContext, StoreOutcome
from attest_cli.pathspec import covers
from attest_cli.pipeline.model import Pipeline, Step
from attest_cli.record import Record

if TYPE_CHECKING:
    from attest_cli.cache.backends.reapi import ReapiBackend
    from attest_cli.cache.parallel_restat import RestatCheck
    from attest_cli.engine.run_report import StepResult

log = logging.getLogger("attest.cache")


class _MissState(Record):
    parts: KeyParts
    inputs: list[FileState]
    walk: InputWalk | None  # what the key's expansion listed
    check: RestatCheck | None  # started at the miss, waiting for the step to end

    def __init__(self, parts: KeyParts, inputs: list[FileState], walk: InputWalk | None = None,
                 check: RestatCheck | None = None) -> None:
        self.parts = parts
        self.inputs = inputs
        self.walk = walk
        self.check = check


# Helpers of :class:`RestatCheck` started before their steps run and waiting, at most: each
# is an idle interpreter (~8 MiB), and a step that fails or is never stored keeps its own
# until its decision is dropped.
EARLY_CHECKS = 2


class KeyReport(Record):
    """A step's key as it would be computed now, and how it relates to the last entry."""

    key: str
    parts: KeyParts
    previous: dict[str, object] | None
    changes: list[dict[str, str | None]]

    def __init__(self, key: str, parts: KeyParts, previous: dict[str, object] | None,
                 changes: list[dict[str, str | None]]) -> None:
        self.key = key
        self.parts = parts
        self.previous = previous
        self.changes = changes


LIST_ENTRIES_FROM = 512  # steps in a pipeline from which up-to-date checks list the entries
LIST_ENTRIES_PER_STEP = 20  # ... unless the cache holds more than this many per step


class ContentCache:
    """Implements :class:`attest_cli.engine.interfaces.StepCache`."""

    def __init__(self, *, local: LocalBackend, remote: GuardedBackend | None = None,
                 remote_writable: bool = True, index: StatIndex, required: bool = False,
                 max_entry_size: int | None = None) -> None:
        self.local = local
        self.remote = remote
        self.remote_writable = remote_writable
        self.index = index
        self.required = required
        self.max_entry_size = max_entry_size
        self.backend_name = remote.name if remote else local.name
        self.networked = remote is not None
        self.counts: dict[str, dict[str, int]] = {}
        self.required_failure: str | None = None
        self._lock = threading.Lock()
        self._warned_vars: set[str] = set()
        self._dirty = False  # written to the local tier since the last sync
        self._sync: threading.Thread | None = None  # the sync :meth:`flush` started
        # read once (attest never changes it): /proc/self/status per output was a per-step
        # cost of every no-op run
        self._umask = process_umask()
        self._steps_dir = local.root / "steps"
        # a REAPI remote stores steps as Actions, not manifests (:mod:`.reapi_tier`)
        self.reapi: ReapiBackend | None = None
        if remote is not None and getattr(remote.inner, "step_aware", False):
            self.reapi = cast("ReapiBackend", remote.inner)
        self._fresh: FreshIndex | None = None  # the run's pipeline's, opened at first use
        self._entry_names: set[str] | None = None  # the local entries, listed at first use
        self._entries_listed = False
        self._records: dict[str, StepRecords] = {}  # per pipeline, opened at first use
        self._legacy: frozenset[str] | None = None  # per-step record files (_legacy_records)
        self._early: list[RestatCheck] = []  # started at a miss, for their stores
        self._early_starting = 0  # being started (outside the lock)

    # -- keys ----------------------------------------------------------------------------
    def key_for(self, pipeline: Pipeline, step: Step, environ: Mapping[str, str]
                ) -> tuple[KeyParts, list[FileState]]:
        states = input_states(pipeline.root, step.inputs, self.index)
        return self._parts(pipeline, step, environ, states), states

    def _parts(self, pipeline: Pipeline, step: Step, environ: Mapping[str, str],
               states: list[FileState]) -> KeyParts:
        root = pipeline.root
        env = key_env(pipeline.env, step.env, step.cache_env, step.cache_exclude_env,
                      pipeline.secret_names, environ)  # holds step.secrets too
        inputs = key_inputs(step.name, states)
        upstream = {name: output_digest(root, pipeline.steps[name].outputs, self.index)
                    for name in step.needs if name in pipeline.steps}
        return build_parts(command=step.run, env=env, inputs=inputs, upstream=upstream,
                           outputs=step.outputs)

    def explain(self, pipeline: Pipeline, step: Step, environ: Mapping[str, str]) -> KeyReport:
        parts, _ = self.key_for(pipeline, step, environ)
        previous = self._last_entry(pipeline, step)
        changes = parts.differences(previous["components"]) if previous else []  # type: ignore[arg-type]
        return KeyReport(key=parts.key, parts=parts, previous=previous, changes=changes)

    def _record_path(self, pipeline: Pipeline, step: Step) -> Path:
        """A step's record as a file of its own, as attest kept it before the pipeline's
        record map (:mod:`.records`): still read, never written."""
        ident = bytes_digest(f"{pipeline.root}\0{pipeline.name}\0{step.name}".encode())[7:39]
        return self._steps_dir / f"{ident}.json"

    def _legacy_records(self) -> frozenset[str]:
        """The per-step record files of earlier versions, listed once: a miss of a step
        without a record (every step of a first build) then opens no file for it."""
        with self._lock:
            if self._legacy is None:
                try:
                    with os.scandir(self._steps_dir) as it:
                        self._legacy = frozenset(
                            e.name for e in it
                            if e.name.endswith(".json") and not e.name.endswith(".records.json"))
                except OSError:
                    self._legacy = frozenset()
            return self._legacy

    def _step_records(self, pipeline: Pipeline) -> StepRecords:
        ident = bytes_digest(f"{pipeline.root}\0{pipeline.name}".encode())[7:39]
        with self._lock:
            records = self._records.get(ident)
            if records is None:
                records = StepRecords(self._steps_dir / f"{ident}.records.json")
                self._records[ident] = records
            return records

    def _last_entry(self, pipeline: Pipeline, step: Step) -> dict[str, object] | None:
        record = self._step_records(pipeline).get(step.name)
        if record is not None:
            return record
        legacy = self._legacy_records()
        if not legacy:
            return None
        path = self._record_path(pipeline, step)
        if path.name not in legacy:
            return None
        try:  # a cache directory may come from elsewhere: bounded like a manifest
            with path.open("rb") as fh:
                raw = fh.read(MANIFEST_LIMITS.max_bytes + 1)
            if len(raw) > MANIFEST_LIMITS.max_bytes:
                return None
            data = json.loads(raw)
        except (OSError, ValueError, RecursionError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("components"), dict):
            return None
        return data

    def _remember(self, pipeline: Pipeline, step: Step, parts: KeyParts) -> None:
        """Record the components of the step's latest entry (for explaining later misses).

        In the pipeline's record map (:mod:`.records`), written once when the cache closes:
        a file per stored step was a third of a cold build's cache writes. A hit on the
        entry already recorded changes nothing."""
        records = self._step_records(pipeline)
        if records.key(step.name) == parts.key:
            return
        records.put(step.name, {"key": parts.key, "pipeline": pipeline.name, "step": step.name,
                                "components": parts.items, "at": time.time()})

    # -- up-to-date steps ----------------------------------------------------------------
    def _fresh_index(self, pipeline: Pipeline) -> FreshIndex:
        with self._lock:  # the first store may race the first check
            if self._fresh is None:
                ident = bytes_digest(f"{pipeline.root}\0{pipeline.name}".encode())[7:39]
                self._fresh = FreshIndex(self.local.root / "fresh" / f"{ident}.marshal")
            return self._fresh

    def fresh(self, ctx: StepContext) -> CacheDecision | None:
        """A hit without a lookup when nothing the key covers can have changed
        (:mod:`attest_cli.cache.fresh`); None means "do the full lookup"."""
        step, pipeline = ctx.step, ctx.pipeline
        digests = {name: r.output_digest for name, r in ctx.upstream.items()
                   if r.status in ("success", "cached")}
        index = self._fresh if self._fresh is not None else self._fresh_index(pipeline)
        entry = index.check(pipeline, step, ctx.env, digests)
        if entry is None or not self._has_entry(pipeline, entry.key):
            return None
        log_text = ""
        if entry.log_digest is not None:
            try:
                log_text = self._blob(entry.log_digest, [self.local]).decode("utf-8", "replace")
            except (CorruptEntry, BackendUnavailable):
                return None
        self._warn_undeclared(pipeline, step, ctx.env)
        self._count(self.local.name, "hits")
        return CacheDecision(
            hit=True, backend=self.local.name, key=entry.key, log_text=log_text,
            output_digest=entry.output_digest,
            outputs=[{"path": p, "hash": d} for p, d in entry.outputs],
            inputs=[{"path": p, "hash": d} for p, d in entry.inputs])

    def _has_entry(self, pipeline: Pipeline, key: str) -> bool:
        """Is the entry in the local tier? A big pipeline lists the entries once (a stat
        per up-to-date step was a tenth of a 5,000-step no-op run); a key missing from
        that listing is asked again (it may have been stored since)."""
        if not self._entries_listed and len(pipeline.steps) >= LIST_ENTRIES_FROM:
            with self._lock:
                if not self._entries_listed:
                    self._entries_listed = True
                    self._entry_names = self.local.names(
                        entries.ENTRIES.rstrip("/"), limit=LIST_ENTRIES_PER_STEP *
                        len(pipeline.steps))
        if self._entry_names is not None and key in self._entry_names:
            return True
        return self.local.contains(entries.entry_key(key))

    def _note_fresh(self, ctx: StepContext, parts: KeyParts, states: list[FileState],
                    output_digest: str, outputs: list[dict[str, str]], log_digest: str | None,
                    ins: Vouchers | None = None) -> None:
        self._fresh_index(ctx.pipeline).note(
            ctx.pipeline, ctx.step, ctx.env, key=parts.key, output_digest=output_digest,
            components=parts.items, inputs=states,
            outputs=[(o["path"], o["hash"]) for o in outputs], log_digest=log_digest, ins=ins)

    def save_fresh(self, finished: Mapping[str, bool]) -> None:
        """End of the run: keep the records of the steps that ended well."""
        if self._fresh is not None:
            self._fresh.save(finished)

    # -- lookup --------------------------------------------------------------------------
    def lookup(self, ctx: StepContext) -> CacheDecision:
        step, pipeline = ctx.step, ctx.pipeline
        self._warn_undeclared(pipeline, step, ctx.env)
        walk = InputWalk()
        states = input_states(pipeline.root, step.inputs, self.index, walk)
        # The store's check of the inputs starts now, so that its helper's start-up overlaps
        # the key's encoding and the step; it waits for the step to end (a hit stops it).
        check = self._early_check(pipeline.root, states)
        try:
            state = _MissState(self._parts(pipeline, step, ctx.env, states), states, walk)
            decision = self._look_up(ctx, state)
            if not decision.hit and check is not None:
                self._adopt(check, state)
                check = None
            return decision
        finally:
            if check is not None:
                check.close()

    def _look_up(self, ctx: StepContext, state: _MissState) -> CacheDecision:
        """The entry of ``state``'s key in each tier, restored; a miss otherwise."""
        step, pipeline = ctx.step, ctx.pipeline
        parts, states = state.parts, state.inputs
        key = parts.key
        inputs = [{"path": s.path, "hash": s.digest} for s in states if s.kind != "dir"]
        problems: list[str] = []
        tiers: list[CacheBackend] = [self.local] + ([self.remote] if self.remote else [])
        for backend in tiers:
            try:
                if backend is self.remote and self.reapi is not None:
                    found = reapi_tier.lookup(self.remote, self.reapi, self.local, ctx, parts,
                                              states)
                    if found is None:
                        continue
                    manifest, log_bytes = found
                    self._dirty = True
                else:
                    loaded = entries.load_manifest(backend, key)
                    if loaded is None:
                        continue
                    manifest = loaded
                    if self._restore_is_long(ctx, manifest):
                        # the same context without the limit: the pending lookup restores
                        unlimited = StepContext(ctx.run_id, ctx.pipeline, ctx.step, ctx.env,
                                                ctx.workdir, ctx.upstream,
                                                restore_inline_limit=None)
                        return CacheDecision(hit=True, backend=backend.name, key=key,
                                             pending=functools.partial(self.lookup, unlimited))
                    log_bytes = self._restore(pipeline.root, step, manifest, backend)
            except BackendUnavailable as exc:
                problems.append(f"{backend.name} unavailable ({exc})")
                self._note_required(exc)
                continue
            except (CorruptEntry, UnsafeRestore) as exc:
                if self._writable(backend):
                    log.warning("cache entry %s of step %s is corrupt or unsafe, deleting "
                                "it: %s", key[:12], step.name, exc)
                    problems.append(f"corrupt entry deleted ({exc})")
                    self._forget(backend, key)
                else:
                    where = (f"read-only {backend.name} cache" if not self.remote_writable
                             else f"{backend.name} Action Cache")  # REAPI cannot delete
                    log.warning("cache entry %s of step %s in the %s is corrupt or unsafe, "
                                "ignoring it: %s", key[:12], step.name, where, exc)
                    problems.append(f"corrupt entry ignored ({exc})")
                continue
            if backend is not self.local:
                self._copy_to_local(manifest)
            self._remember(pipeline, step, parts)
            self._count(backend.name, "hits")
            log_text = log_bytes.decode("utf-8", "replace")
            outputs = [{"path": f.path, "hash": f.digest} for f in manifest.files
                       if f.kind != "dir"]
            output_digest = manifest.output_digest  # computed, not stored: once
            self._note_fresh(ctx, parts, states, output_digest, outputs,
                             manifest.log_digest if log_bytes else None)
            return CacheDecision(
                hit=True, backend=backend.name, key=key, log_text=log_text,
                output_digest=output_digest, outputs=outputs,
                inputs=inputs, components=parts.lazy_summary(), state=state)
        self._count(self.backend_name, "misses")
        return CacheDecision(hit=False, backend=self.backend_name, key=key,
                             reason=self._miss_reason(pipeline, step, parts, problems),
                             inputs=inputs, components=parts.lazy_summary(), state=state)

    def _early_check(self, root: Path, states: list[FileState]) -> RestatCheck | None:
        """The store's check of many inputs (see :mod:`.parallel_restat`), its helper
        started now and waiting; None for few inputs, or while EARLY_CHECKS wait."""
        from attest_cli.cache.parallel_restat import SHARE_FROM, RestatCheck

        if len(states) < SHARE_FROM:
            return None
        with self._lock:  # those a store used, or a hit or dropped decision stopped, are done
            self._early = [c for c in self._early if c.proc is not None]
            if len(self._early) + self._early_starting >= EARLY_CHECKS:
                return None
            self._early_starting += 1
        try:
            check = RestatCheck(root, states, begin=False)  # not under the lock: ~4 ms
        finally:
            with self._lock:
                self._early_starting -= 1
        if check.proc is None:
            return None
        with self._lock:
            self._early.append(check)
        return check

    @staticmethod
    def _adopt(check: RestatCheck, state: _MissState) -> None:
        """``state``'s store will use ``check``; if the decision is dropped unstored (the
        step failed), its helper stops then, and at :meth:`close` at the latest."""
        state.check = check
        weakref.finalize(state, check.close)

    @staticmethod
    def _restore_is_long(ctx: StepContext, manifest: Manifest) -> bool:
        """Whether the caller asked not to be held by this restore (its size is over
        ``ctx.restore_inline_limit``; outputs held in the manifest cost nothing)."""
        limit = ctx.restore_inline_limit
        return limit is not None and sum(
            f.size for f in manifest.files if f.kind == "file" and f.data is None) > limit

    def _miss_reason(self, pipeline: Pipeline, step: Step, parts: KeyParts,
                     problems: list[str]) -> str:
        previous = self._last_entry(pipeline, step)
        if previous is None:
            reason = "no earlier entry for this step"
        else:
            changes = parts.diff(previous["components"])  # type: ignore[arg-type]
            reason = (explain_changes(changes) if changes else
                      f"entry {parts.key[:12]} is no longer in the cache (evicted or cleared)")
        return "; ".join([reason, *problems])

    def _restore(self, root: Path, step: Step, manifest: Manifest, backend: CacheBackend
                 ) -> bytes:
        """Restore the outputs (checking each path against the declaration); the log."""
        for f in manifest.files:
            if not covers(step.outputs, f.path):
                raise UnsafeRestore(f"{f.path!r} is not among the step's declared outputs")
        fetch_from: list[CacheBackend] = [backend] if backend is self.local else [self.local,
                                                                                  backend]

        def blob(f: OutputFile) -> bytes:
            return f.data if f.data is not None else self._blob(f.digest, fetch_from)

        unchanged = {f.path for f in manifest.files if f.kind == "file" and self._same(root, f)}
        restore_files(root, [f for f in manifest.files if f.path not in unchanged], blob)
        if manifest.log_size == 0 and manifest.log_digest == EMPTY_DIGEST:
            return b""  # a silent step: nothing to fetch
        return self._blob(manifest.log_digest, fetch_from)

    def _blob(self, digest: str, tiers: list[CacheBackend]) -> bytes:
        """A verified blob from the first tier that has a good copy (local before remote);
        a bad local copy is dropped and the remote asked, rather than condemning the entry."""
        fallback = len(tiers) > 1
        for backend in tiers:
            if backend is self.local and fallback and \
                    not backend.contains(entries.blob_key(digest)):
                continue
            try:
                data = entries.fetch_blob(backend, digest, repair=self._writable(backend))
            except CorruptEntry as exc:
                if backend is self.local and fallback:
                    log.debug("local copy of a blob is bad, asking the remote: %s", exc)
                    continue
                raise
            if backend is not self.local:
                entries.put_blob(self.local, digest, data)
                self._dirty = True
            return data
        raise CorruptEntry(f"blob {digest[:19]}... is missing")

    def _same(self, root: Path, f: OutputFile) -> bool:
        """An output already on disk with the right content and mode needs no write."""
        full = os.path.join(root, f.path)  # str paths: this runs for every output of a hit
        try:
            st = os.lstat(full)
        except OSError:
            return False
        if not stat_mod.S_ISREG(st.st_mode) or st.st_size != f.size or \
                stat_mod.S_IMODE(st.st_mode) != restored_mode(bool(f.mode & 0o111), self._umask):
            return False
        try:
            return self.index.digest(full, st) == f.digest
        except OSError:
            return False

    def _writable(self, backend: CacheBackend) -> bool:
        """May this lookup delete from the backend? Never from a read-only remote, nor
        from an Action Cache (REAPI has no delete)."""
        return backend is self.local or (self.remote_writable and self.reapi is None)

    def _copy_to_local(self, manifest: Manifest) -> None:
        try:
            entries.put_manifest(self.local, manifest)
            self._dirty = True
        except OSError as exc:
            log.debug("could not copy entry %s to the local tier: %s", manifest.key[:12], exc)

    def _forget(self, backend: CacheBackend, key: str) -> None:
        if backend is self.local and self._entry_names is not None:
            with self._lock:
                self._entry_names.discard(key)
        try:
            entries.delete_entry(backend, key)
        except (BackendUnavailable, OSError) as exc:
            log.debug("could not delete entry %s from %s: %s", key[:12], backend.name, exc)

    # -- store ---------------------------------------------------------------------------
    def store(self, ctx: StepContext, decision: CacheDecision, result: StepResult,
              log_path: Path) -> StoreOutcome:
        state = decision.state
        assert isinstance(state, _MissState)
        from attest_cli.cache.parallel_restat import RestatCheck  # stores only

        step, root = ctx.step, ctx.pipeline.root
        # many inputs: a helper checks a part (started at the miss, if it could be)
        check = state.check or RestatCheck(root, state.inputs)
        check.begin()
        try:
            fresh = self._fresh_index(ctx.pipeline)
            # plain trees: their vouchers, taken now, prove the same files are there (and
            # go into the up-to-date record); otherwise the declarations are expanded again
            ins = fresh.input_vouchers(root, step, state.inputs, state.walk)
            changed = check.finish()
        finally:
            check.close()
        if ins is None:
            now = input_paths(root, step.inputs)
            before = [s.path for s in state.inputs]
            # a FIFO, socket or device is never in the key (the scan skips it), so one that
            # is listed now was not "added" (it made such a step never stored)
            changed += sorted(p for p in set(now) ^ set(before) if not is_special(root, p))
        if changed:
            return self._not_stored(step, f"input {changed[0]} changed while the step ran")
        # each file is read once, below: its digest is of the bytes kept
        files, missing = describe(root, step.outputs, self.index, contents=False)
        if missing:
            return self._not_stored(step, f"declared output {missing[0]} was not produced")
        for f in files:
            if f.kind == "symlink":
                try:
                    check_link(f.path, f.target)
                except CorruptEntry as exc:  # it could never be restored safely
                    return self._not_stored(step, f"output {exc}")
        limit = self.max_entry_size
        for f in files:
            if limit is not None and f.kind == "file" and f.size > limit:
                return self._not_stored(step, f"output {f.path} is larger than "
                                              f"cache.max_entry_size ({limit} bytes)")
        blobs: dict[str, bytes] = {}
        stored_files: list[OutputFile] = []
        for f in files:
            if f.kind == "file":
                data = read_whole(os.path.join(root, f.path), f.size)
                digest = bytes_digest(data)
                blobs[digest] = data
                f = OutputFile(path=f.path, kind="file", mode=f.mode, digest=digest,
                               size=len(data))
            stored_files.append(f)
        log_bytes = log_path.read_bytes() if log_path.exists() else b""
        log_digest = bytes_digest(log_bytes)
        blobs[log_digest] = log_bytes
        manifest = Manifest(key=state.parts.key, step=step.name,
                            files=inline_small(stored_files, blobs),
                            log_digest=log_digest, log_size=len(log_bytes),
                            exit_code=result.exit_code or 0, wall_seconds=result.wall_seconds,
                            created_at=time.time(), components=state.parts.items)
        written = self._write(self.local, manifest, blobs)
        self._dirty = True
        self._count(self.local.name, "stored_bytes", written)
        if self.remote is not None and self.remote_writable:
            try:
                if self.reapi is not None:
                    remote_written = reapi_tier.store(
                        self.remote, self.reapi, ctx, state.parts, state.inputs,
                        stored_files, blobs, log_bytes, result.wall_seconds)
                else:
                    remote_written = self._write(self.remote, manifest, blobs)
                self._count(self.remote.name, "stored_bytes", remote_written)
                written += remote_written
            except BackendUnavailable as exc:
                self._note_required(exc)
                log.debug("not stored in %s: %s", self.remote.name, exc)
        self._remember(ctx.pipeline, step, state.parts)
        outputs = [{"path": f.path, "hash": f.digest} for f in stored_files if f.kind != "dir"]
        output_digest = manifest.output_digest  # computed, not stored: once
        self._note_fresh(ctx, state.parts, state.inputs, output_digest, outputs,
                         log_digest if log_bytes else None, ins)
        return StoreOutcome(stored=True, bytes=written, output_digest=output_digest,
                            outputs=outputs)

    @staticmethod
    def _write(backend: CacheBackend, manifest: Manifest, blobs: dict[str, bytes]) -> int:
        """The entry's blobs (those it does not hold inline), then its manifest."""
        written = sum(entries.put_blob(backend, d, blobs[d]) for d in manifest.blob_digests)
        return written + entries.put_manifest(backend, manifest)

    def _not_stored(self, step: Step, reason: str) -> StoreOutcome:
        log.warning("step %s not cached: %s", step.name, reason)
        return StoreOutcome(stored=False, reason=reason)

    # -- bookkeeping ---------------------------------------------------------------------
    def _count(self, backend: str, what: str, n: int = 1) -> None:
        with self._lock:
            row = self.counts.setdefault(backend, {"hits": 0, "misses": 0, "stored_bytes": 0})
            row[what] += n

    def _note_required(self, exc: Exception) -> None:
        if self.required and self.required_failure is None:
            self.required_failure = str(exc)

    def _warn_undeclared(self, pipeline: Pipeline, step: Step, env: Mapping[str, str]) -> None:
        if "$" not in step.run:  # no variable referenced (most commands): nothing to warn
            return
        declared = (pipeline.env, step.env, step.cache_env, step.cache_exclude_env,
                    pipeline.secret_names)  # the last holds step.secrets too
        for name in undeclared_variables(step.run, declared, env):
            marker = f"{step.name}:{name}"
            with self._lock:
                if marker in self._warned_vars:
                    continue
                self._warned_vars.add(marker)
            log.warning("step %s uses $%s, which is not part of its cache key: a change of it "
                        "will not re-run the step (list it in cache_env, or in "
                        "cache_exclude_env to silence this)", step.name, name)

    def flush(self) -> None:
        """Every step has ended: write the stat index and the records now, and start the
        one sync of the local tier's file system in the background, so that it overlaps
        the end of the run (history, report, receipt). :meth:`close` waits for it."""
        self.local.flush()  # the entry rows still waiting in memory: before the sync
        self._save_indexes()
        if self._dirty and self._sync is None:
            self._dirty = False
            self._sync = threading.Thread(target=sync_filesystem, args=(self.local.root,),
                                          name="attest-sync", daemon=True)
            self._sync.start()

    def _save_indexes(self) -> None:
        self.index.save()
        for records in self._records.values():
            if records.save():
                self._dirty = True

    def close(self) -> None:
        """End of the run: save the stat index; one sync of the local tier's file system.

        Entries and records are written without an fsync each (three per stored step used
        to dominate a cold build). Every file is written to a temp name and renamed, a
        manifest is a row written to the entry table's log (in a batch, see
        ``backends/entry_table.py``; written before the sync), and every read is verified
        (digests, the manifest's own key, bounded sizes), so:
        if attest dies, only the steps not yet finished are lost; if the machine loses
        power before this sync, entries stored since the last sync may be missing or torn,
        and a torn one is a miss (deleted), never a wrong restore."""
        for check in self._early:  # the checks of steps that were never stored
            check.close()
        self._early.clear()
        self.local.flush()
        self._save_indexes()
        if self._dirty:  # written since :meth:`flush`, or a run that never reached it
            self._dirty = False
            sync_filesystem(self.local.root)
        if self._sync is not None:
            self._sync.join()
            self._sync = None
        self.local.close()  # the entry table's connections (the last folds its WAL in)
        if self.remote is not None:
            self.remote.close()
