"""The glue between the step cache and a REAPI remote (:mod:`.backends.reapi`).

The key-value remotes take attest's manifest and blobs as they are; a REAPI remote takes a
step: its Action is built from the step (:func:`attest_cli.reapi.action.spec_for_step`,
salted with attest's key) and its input states (whose BLAKE3 digests are reused when the
server speaks BLAKE3). A hit comes back as a :class:`~.manifest.Manifest` like any other
tier's, with its blobs copied into the local tier; an ActionResult that cannot be trusted
is a :class:`~.manifest.CorruptEntry` (a miss with one warning).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from attest_cli.cache import store as entries
from attest_cli.cache.manifest import CorruptEntry, Manifest, OutputFile
from attest_cli.cache.statindex import FileState
from attest_cli.digest import bytes_digest
from attest_cli.pathspec import covers

if TYPE_CHECKING:
    from attest_cli.cache.backends.guard import GuardedBackend
    from attest_cli.cache.backends.local import LocalBackend
    from attest_cli.cache.backends.reapi import ReapiBackend
    from attest_cli.cache.keys import KeyParts
    from attest_cli.engine.interfaces import StepContext
    from attest_cli.pipeline.model import Pipeline, Step

log = logging.getLogger("attest.cache")


def _spec(pipeline: Pipeline, step: Step, environ: Mapping[str, str], key: str) -> Any:
    from attest_cli.reapi.action import spec_for_step

    return spec_for_step(pipeline, step, environ, salt=key)


def _inputs(states: Sequence[FileState]) -> tuple[list[str], dict[str, str]]:
    return ([s.path for s in states],
            {s.path: s.digest for s in states if s.kind == "file"})


def lookup(guard: GuardedBackend, backend: ReapiBackend, local: LocalBackend,
           ctx: StepContext, parts: KeyParts, states: Sequence[FileState]
           ) -> tuple[Manifest, bytes] | None:
    """Restore the step from the Action Cache: its manifest and log, or ``None``."""
    from attest_cli.reapi.errors import UnsafeResult

    step, pipeline = ctx.step, ctx.pipeline
    paths, known = _inputs(states)

    def sink(digest: str, data: bytes) -> None:
        try:
            entries.put_blob(local, digest, data)
        except OSError as exc:
            log.debug("could not copy a blob to the local tier: %s", exc)

    try:
        hit = guard.call(lambda: backend.lookup(
            pipeline.root, _spec(pipeline, step, ctx.env, parts.key), paths,
            allowed=lambda p: covers(step.outputs, p), sink=sink, known=known))
    except UnsafeResult as exc:
        raise CorruptEntry(str(exc)) from None
    if hit is None:
        return None
    log_digest = bytes_digest(hit.log)
    sink(log_digest, hit.log)
    manifest = Manifest(key=parts.key, step=step.name, files=hit.files, log_digest=log_digest,
                        log_size=len(hit.log), exit_code=hit.exit_code,
                        created_at=time.time(), components=parts.items)
    return manifest, hit.log


def contains(guard: GuardedBackend, backend: ReapiBackend, pipeline: Pipeline, step: Step,
             environ: Mapping[str, str], parts: KeyParts, states: Sequence[FileState]
             ) -> tuple[bool, str]:
    """Whether the Action Cache holds the step (``attest cache explain``); its Action."""
    paths, known = _inputs(states)
    return guard.call(lambda: backend.contains_step(
        pipeline.root, _spec(pipeline, step, environ, parts.key), paths, known))


def store(guard: GuardedBackend, backend: ReapiBackend, ctx: StepContext, parts: KeyParts,
          states: Sequence[FileState], files: Sequence[OutputFile], blobs: Mapping[str, bytes],
          log_bytes: bytes, wall_seconds: float) -> int:
    """Upload the step as an Action and its ActionResult; the bytes sent."""
    step, pipeline = ctx.step, ctx.pipeline
    paths, known = _inputs(states)
    finished = time.time()
    return guard.call(lambda: backend.store(
        pipeline.root, _spec(pipeline, step, ctx.env, parts.key), paths, files, blobs,
        log_bytes, exit_code=0, started=finished - wall_seconds, finished=finished,
        known=known))
