"""Up-to-date steps without a lookup: what make and ninja do, with the cache's own answer.

A no-op re-run used to compute every step's key (expand inputs, consult the stat index,
digest the components), read its manifest, compare its outputs and rewrite nothing - about
0.2 ms a step, most of a 5,000-step no-op (issue 14). This index remembers, per step, the
key its last run ended with and the ``lstat`` signature (device, inode, size, mtime, ctime)
of each input and output file at the moment that key and those outputs were established.
When a step's definition (command, key env values, declared paths, needs) is the same,
every file still has its signature, every needed step ended with the output digest this
key was computed from, and the local tier still holds the entry, the key cannot have
changed and the outputs are the entry's: the step is replayed as a hit without touching
its key, manifest or outputs.

It is deliberately narrow, so that "fresh" never means "probably": only steps whose
declared inputs and outputs are literal paths - regular files, or directories whose every
subdirectory and file is recorded too (adding, removing or renaming an entry moves its
directory's mtime) - with no symlink or special file among them (a link's target can
change under an unchanged ``lstat``; a glob's membership depends on directories it does not
name), and whose files were last changed at least :data:`RACY_SECONDS` before they were
recorded (git's "racily clean" rule: a change within the same timestamp tick would leave
the signature as it was; ``ctime`` moves on any write, rename or ``chmod``). Anything else
takes the full lookup, which also refreshes the record. The index is an accelerator, never
a source of truth: a damaged or foreign file is ignored and rewritten, and it is written to
a temp file and renamed at the end of a run, without an fsync.
"""

from __future__ import annotations

import logging
import marshal
import os
import stat
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from attest_cli import __version__, compactjson
from attest_cli.atomic import write_atomic
from attest_cli.cache.keys import FORMAT_VERSION, key_env, platform_tag
from attest_cli.cache.statindex import RACY_SECONDS, FileState, Signature, signature_of
from attest_cli.digest import bytes_digest
from attest_cli.pathspec import is_glob
from attest_cli.pipeline.model import Pipeline, Step
from attest_cli.regularfile import read_regular

if TYPE_CHECKING:
    from attest_cli.cache.inputs import InputWalk

log = logging.getLogger("attest.cache")

# the platform is a key component the fingerprint skip below would not see
_FORMAT = f"attest-fresh/2 {__version__} {platform_tag()} marshal{marshal.version}"
MAX_INDEX_BYTES = 256 * 2**20


class FreshEntry(NamedTuple):
    """What a step's last run established, as stored (plain values only: marshal)."""

    source: str  # digest of the pipeline file it was defined in ("" when unknown)
    fingerprint: str
    key: str
    output_digest: str
    # every file and directory vouching for the inputs and outputs: (path, lstat
    # signature, is a directory)
    files: tuple[tuple[str, Signature, bool], ...]
    needs: tuple[tuple[str, str], ...]  # needed step -> output digest in the key
    inputs: tuple[tuple[str, str], ...]  # path -> digest, for the run report
    outputs: tuple[tuple[str, str], ...]
    log_digest: str | None  # None: the step printed nothing


def fingerprint(pipeline: Pipeline, step: Step, environ: Mapping[str, str]) -> str:
    """Everything in the key but file contents and upstream digests, as one digest."""
    env = key_env(pipeline.env, step.env, step.cache_env, step.cache_exclude_env,
                  pipeline.secret_names, environ)
    return bytes_digest(compactjson.dumps(
        [FORMAT_VERSION, platform_tag(), step.run, sorted(env.items()), step.inputs,
         step.outputs, sorted(step.needs)]))


Vouchers = list[tuple[str, Signature, bool]]  # (path, lstat signature, is a directory)


def vouchers(base: str, patterns: Sequence[str], found: Sequence[str],
             known: Mapping[str, Signature] | None = None, *, empty_dirs: bool = False
             ) -> Vouchers | None:
    """The files and directories whose ``lstat`` signatures vouch that ``patterns`` still
    expand to exactly ``found`` with the same contents; None if no such set exists.

    A literal file is its own voucher. A literal directory (``dir``, ``dir/``, ``dir/**``)
    is vouched for by every directory of its tree (an entry added, removed or renamed
    moves its directory's mtime) and every file in it. Globs, symlinks and special files
    have no vouchers: a glob's membership depends on directories it did not name, and a
    link's target can change without the link's own ``lstat`` changing. ``known`` holds
    signatures just taken (the key's inputs): those files are not ``lstat``-ed again.
    ``empty_dirs``: ``found`` lists empty directories too, as inputs are expanded."""
    known = known or {}
    out: Vouchers = []
    seen: set[str] = set()

    def sig(rel: str) -> Signature:
        return known.get(rel) or signature_of(os.lstat(os.path.join(base, rel)))

    try:
        for pattern in patterns:
            named = _named(pattern)
            if named is None:
                return None
            literal, rel = named
            st = os.lstat(os.path.join(base, rel))
            if stat.S_ISREG(st.st_mode) and literal == pattern:
                out.append((rel, signature_of(st), False))
                seen.add(rel)
                continue
            if not stat.S_ISDIR(st.st_mode):
                return None
            stack = [rel]
            while stack:
                here = stack.pop()
                out.append((here, signature_of(os.lstat(os.path.join(base, here))), True))
                empty = True
                with os.scandir(os.path.join(base, here)) as it:
                    for entry in it:  # the type from the directory itself: no stat
                        empty = False
                        path = here + "/" + entry.name
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(path)
                        elif entry.is_file(follow_symlinks=False):
                            out.append((path, sig(path), False))
                            seen.add(path)
                        else:
                            return None  # a symlink or a special file
                if empty and empty_dirs and here != ".":
                    seen.add(here)
    except OSError:
        return None
    return out if seen == set(found) else None


def _named(pattern: str) -> tuple[str, str] | None:
    """What a declaration names (``dir``, ``dir/``, ``dir/**`` name ``dir``), as written
    and normalised; None for a glob, which names no one path."""
    literal = pattern.rstrip("/")
    if literal.endswith("/**"):
        literal = literal[:-3]
    return None if is_glob(literal) else (literal, os.path.normpath(literal))


def walked_vouchers(base: str, patterns: Sequence[str], files: Mapping[str, Signature],
                    walk: InputWalk) -> Vouchers | None:
    """:func:`vouchers` of the inputs without listing their trees again, or None.

    Each directory the key's expansion listed was ``stat``-ed just before its listing. An
    entry added, removed or renamed since then moved the directory's mtime and ctime,
    unless the directory had already changed in the same clock tick: so a signature that
    is the same now, and is older than the expansion by :data:`RACY_SECONDS`, vouches
    that its listing is still the one the key saw. The files vouch with the signatures
    the key was computed from, ``files`` (the store's check compares them with the files
    now).

    None, and :func:`vouchers` walks, unless every declaration is a literal file or a
    directory tree the expansion listed, all of it (no directory it could not read), and
    every path found has a state. The trees of 10,000 inputs in 100 directories took 11 ms
    to walk again after each step, and the store's check that the inputs did not change
    waited for it."""
    if not walk.complete:
        return None  # a FIFO, socket or device: vouchers() says no
    for pattern in patterns:
        named = _named(pattern)
        if named is None:
            return None
        literal, rel = named
        if rel not in walk.dirs and not (rel in files and literal == pattern):
            return None  # absent (nothing vouches for an absence), or not listed here
    settled = walk.began_ns - int(RACY_SECONDS * 1e9)
    out: Vouchers = []
    try:
        for rel, st in walk.dirs.items():
            if st is None:
                return None  # not listed (an error): what it holds is unknown
            sig = signature_of(st)
            if sig[3] >= settled or sig[4] >= settled:
                return None  # changed just before it was listed: the listing may be stale
            now = os.lstat(os.path.join(base, rel))
            if not stat.S_ISDIR(now.st_mode) or signature_of(now) != sig:
                return None
            out.append((rel, sig, True))
    except OSError:
        return None
    out.extend((path, sig, False) for path, sig in files.items())
    return out


class FreshIndex:
    """One pipeline's records: read once at the first check, written once at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._entries: dict[str, object] | None = None  # validated when asked for
        self._pending: dict[str, FreshEntry] = {}
        self._used: set[str] = set()  # steps answered from the index this run

    # -- reading -------------------------------------------------------------------------
    def _load(self) -> dict[str, object]:
        if self._entries is not None:
            return self._entries
        self._entries = {}
        try:
            blob = read_regular(self.path, max_bytes=MAX_INDEX_BYTES, label=str(self.path))
            data = marshal.loads(blob)
        except Exception:  # absent (first run), damaged or foreign: a miss, rewritten
            return self._entries
        if isinstance(data, tuple) and len(data) == 2 and data[0] == _FORMAT \
                and isinstance(data[1], dict):
            self._entries = data[1]
        return self._entries

    def check(self, pipeline: Pipeline, step: Step, environ: Mapping[str, str],
              upstream_digests: Mapping[str, str | None]) -> FreshEntry | None:
        """The step's entry if it is still exactly what its last run established."""
        entry = _entry(self._load().get(step.name))
        if entry is None:
            return None
        for need, digest in entry.needs:
            if upstream_digests.get(need) != digest:
                return None
        if len(entry.needs) != len(step.needs):
            return None
        # Same file bytes, same definition: only ambient ``cache_env`` values can differ.
        # Hashing the definition of each step cost a sixth of a 5,000-step no-op.
        same_source = bool(entry.source) and entry.source == pipeline.source_digest
        if (not same_source or step.cache_env) and \
                entry.fingerprint != fingerprint(pipeline, step, environ):
            return None
        base = str(pipeline.root).rstrip("/") + "/"
        for rel, sig, is_dir in entry.files:
            try:
                st = os.lstat(base + rel)
            except (OSError, TypeError, ValueError):
                return None
            if (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) != sig or \
                    not (stat.S_ISDIR(st.st_mode) if is_dir else stat.S_ISREG(st.st_mode)):
                return None  # (signature_of, inlined: twice per step of a no-op run)
        self._used.add(step.name)
        return entry

    # -- recording (worker threads) ------------------------------------------------------
    @staticmethod
    def input_vouchers(root: Path, step: Step, inputs: Sequence[FileState],
                       walk: InputWalk | None = None) -> Vouchers | None:
        """The vouchers of ``step``'s inputs, taken now (after the step ran) with the
        files' signatures from ``inputs`` (the key's states); None where there are none
        (globs, links). Found, they also prove that the declarations still expand to the
        files of ``inputs``: the store need not walk the trees again to know it.

        With ``walk`` (what the key's expansion saw), the directories it listed are only
        ``lstat``-ed again (:func:`walked_vouchers`); the trees are walked again only where
        that cannot vouch."""
        if not all(s.kind in ("file", "dir") and s.target is None for s in inputs):
            return None
        at_key = {s.path: s.signature for s in inputs if s.kind == "file"}
        if walk is not None:
            found = walked_vouchers(str(root), step.inputs, at_key, walk)
            if found is not None:
                return found
        return vouchers(str(root), step.inputs, [s.path for s in inputs], at_key,
                        empty_dirs=True)

    def note(self, pipeline: Pipeline, step: Step, environ: Mapping[str, str], *, key: str,
             output_digest: str, components: Mapping[str, str], inputs: Sequence[FileState],
             outputs: Sequence[tuple[str, str]], log_digest: str | None,
             ins: Vouchers | None = None) -> None:
        """A key and outputs just established by a lookup or a store (racy ones are not).

        ``inputs`` are the states the key was computed from (``ins``: their vouchers, if
        the caller has them); ``outputs`` (path, digest) are ``lstat``-ed here, right after
        the step stored or restored them."""
        if ins is None:
            ins = self.input_vouchers(pipeline.root, step, inputs)
        if ins is None:
            return
        outs = vouchers(str(pipeline.root), step.outputs, [p for p, _ in outputs])
        if outs is None:
            return
        files = [*ins, *outs]
        settled = time.time_ns() - int(RACY_SECONDS * 1e9)
        if any(sig[3] >= settled or sig[4] >= settled for _, sig, _ in files):
            return  # racily clean: recorded by a later run, once the files have settled
        needs = tuple(sorted((k[6:], v) for k, v in components.items()
                             if k.startswith("needs:")))
        entry = FreshEntry(
            source=pipeline.source_digest or "",
            fingerprint=fingerprint(pipeline, step, environ), key=key,
            output_digest=output_digest, files=tuple(files), needs=needs,
            # as a lookup reports them: files only (an empty directory has no digest)
            inputs=tuple((s.path, s.digest) for s in inputs if s.kind == "file"),
            outputs=tuple(outputs),
            log_digest=log_digest)
        with self._lock:
            self._pending[step.name] = entry

    def save(self, finished: Mapping[str, bool]) -> None:
        """Keep the steps this run confirmed; forget those it ran without a record.

        ``finished`` maps each step of this run to whether it ended well (success or
        cached); steps outside the run (``--step``) keep their records."""
        entries = dict(self._load())
        changed = False
        for name, ok in finished.items():
            if name in self._used and ok:
                continue
            new = tuple(self._pending[name]) if ok and name in self._pending else None
            if new is None:
                changed |= entries.pop(name, None) is not None
            elif entries.get(name) != new:
                entries[name] = new
                changed = True
        if not changed:
            return
        payload = (_FORMAT, entries)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, marshal.dumps(payload), sync=False)
        except (OSError, ValueError) as exc:
            log.debug("fresh-step index %s not written: %s", self.path, exc)


def _entry(raw: object) -> FreshEntry | None:
    """A stored tuple back as an entry, if it has the shape one was written with.

    Exact types and plain loops: this runs once per step of a no-op run."""
    if type(raw) is not tuple or len(raw) != len(FreshEntry._fields):
        return None
    entry = FreshEntry(*raw)
    if type(entry.source) is not str or type(entry.fingerprint) is not str or \
            type(entry.key) is not str or type(entry.output_digest) is not str or \
            not (entry.log_digest is None or type(entry.log_digest) is str):
        return None
    for group in (entry.needs, entry.inputs, entry.outputs):
        if type(group) is not tuple:
            return None
        for pair in group:
            if type(pair) is not tuple or len(pair) != 2 or type(pair[0]) is not str or \
                    type(pair[1]) is not str:
                return None
    # ``files`` is only compared with fresh lstat results: an item of another shape fails
    # to unpack or to compare equal, and either way the step is looked up in full
    if type(entry.files) is not tuple:
        return None
    return entry
