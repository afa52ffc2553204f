"""What ``attest run --dry-run`` predicts for each step: restored from the cache, or run - and why.

A probe, not a lookup: it computes each step's key with the same code a run uses
(:meth:`ContentCache.key_for`), asks the configured tiers whether an entry exists, and
explains a miss the way a run would (:meth:`ContentCache._miss_reason`). It restores
nothing, writes no output, stores no entry and does not save the stat index.

A step that needs a step which would *run* cannot be predicted: its key contains the
upstream's output digest, which is only known after that step ran. It is reported as
"would run: upstream 'X' runs first" instead of a guess. When a needed step would be
*restored*, its output digest is taken from the entry's manifest (what the restore will put
on disk), not from whatever is on disk now.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from attest_cli.cache import store as entries
from attest_cli.cache.backends.base import BackendUnavailable, CacheBackend
from attest_cli.cache.backends.local import LocalBackend
from attest_cli.cache.content_cache import ContentCache
from attest_cli.cache.keys import KeyParts
from attest_cli.cache.manifest import EMPTY_DIGEST, CorruptEntry, Manifest
from attest_cli.cache.setup import build_cache
from attest_cli.config.layers import Settings
from attest_cli.context import AppContext
from attest_cli.pipeline.model import Pipeline


@dataclass
class Prediction:
    """One step's fate in the next run: ``cached`` (from ``backend``) or ``run`` (``reason``)."""

    step: str
    status: str  # "cached" | "run"
    backend: str | None = None
    reason: str | None = None
    key: str | None = None

    def describe(self) -> str:
        if self.status == "cached":
            return f"cached ({self.backend})"
        return f"would run: {self.reason}"


def predict(ctx: AppContext, pipeline: Pipeline, settings: Settings, order: Sequence[str], *,
            no_cache: bool = False) -> dict[str, Prediction]:
    """The prediction of every step in ``order`` (a topological order of the selection)."""
    off = ("--no-cache" if no_cache else
           "cache disabled (cache.enabled is false)" if not settings["cache.enabled"] else None)
    if off is not None:
        return {n: Prediction(n, "run", reason=off) for n in order}
    cache = build_cache(ctx, settings, check_required=False)
    cache.local.table.read_only = True  # immutable: no lock, no log, nothing written
    try:
        return _predict(cache, pipeline, order, ctx.environ)
    finally:
        # not cache.close(): that would save the stat index, and a dry run writes nothing
        cache.local.close()  # reading the entry table leaves nothing behind once closed
        if cache.remote is not None:
            cache.remote.close()


def _predict(cache: ContentCache, pipeline: Pipeline, order: Sequence[str],
             environ: Mapping[str, str]) -> dict[str, Prediction]:
    out: dict[str, Prediction] = {}
    restored_digest: dict[str, str] = {}  # output digest a cached step's restore produces
    tiers: list[CacheBackend] = [cache.local] + ([cache.remote] if cache.remote else [])
    needed = {d for n in order for d in pipeline.steps[n].needs}
    # a tier that failed once is not asked again: one warning, not one timeout per step
    dead: dict[str, str] = {}
    for name in order:
        step = pipeline.steps[name]
        if not step.cache:
            out[name] = Prediction(name, "run", reason="cache: false")
            continue
        running = [d for d in step.needs if d in out and out[d].status == "run"]
        if running:
            out[name] = Prediction(name, "run", reason=f"upstream '{running[0]}' runs first")
            continue
        parts, _states = cache.key_for(pipeline, step, environ)
        override = {f"needs:{d}": restored_digest[d] for d in step.needs if d in restored_digest}
        if override:
            parts = KeyParts({**parts.items, **override})
        key = parts.key
        problems: list[str] = []
        hit: str | None = None
        for backend in tiers:
            if backend.name in dead:
                problems.append(dead[backend.name])
                continue
            local = backend is cache.local
            try:
                if not local and not backend.contains(entries.entry_key(key)):
                    continue
                # the local entry is checked whole (cheap, and a restore from a damaged one
                # would be a miss); a remote manifest is only read when dependents need it
                if local or name in needed:
                    manifest = _peek_manifest(backend, key)
                    if manifest is None:
                        continue
                    if local:
                        _check_blobs(cache, pipeline, backend, manifest)
                    restored_digest[name] = manifest.output_digest
            except BackendUnavailable as exc:
                dead[backend.name] = f"{backend.name} unavailable ({exc})"
                problems.append(dead[backend.name])
                continue
            except CorruptEntry as exc:
                problems.append(f"{backend.name} entry is damaged, a run deletes it ({exc})")
                continue
            hit = backend.name
            break
        if hit is not None:
            out[name] = Prediction(name, "cached", backend=hit, key=key)
        else:
            out[name] = Prediction(name, "run", key=key,
                                   reason=cache._miss_reason(pipeline, step, parts, problems))
    return out


def _peek_manifest(backend: CacheBackend, key: str) -> Manifest | None:
    """The entry's manifest without marking it used: a local read would touch its mtime (the
    LRU clock of ``cache.max_size``), so the file is read directly. A remote read is a read
    (Redis refreshes the entry's TTL, as the real run's lookup would a moment later)."""
    # a local read through peek: bounded like every object read (a planted multi-GB file
    # is refused before it is read into memory), and it does not touch the entry
    return entries.load_manifest(backend, key, touch=not isinstance(backend, LocalBackend))


def _check_blobs(cache: ContentCache, pipeline: Pipeline, backend: CacheBackend,
                 manifest: Manifest) -> None:
    """:class:`CorruptEntry` when a blob the restore would read is gone (the restore would
    fail): the log's (unless empty), and each file's that is neither inline nor already on
    disk as recorded."""
    wanted = {f.digest for f in manifest.files if f.kind == "file" and f.data is None
              and not cache._same(pipeline.root, f)}
    if manifest.log_size or manifest.log_digest != EMPTY_DIGEST:
        wanted.add(manifest.log_digest)
    for digest in sorted(wanted):
        if not backend.contains(entries.blob_key(digest)):
            raise CorruptEntry(f"blob {digest[:19]}... is missing")
