"""What a step's declared outputs are on disk now, as manifest entries.

The same description serves the store (what to save), a downstream step's key (the output
digest of each step it needs, computed from the files themselves, so it is right whether the
upstream step ran, was restored, or is uncached) and ``attest cache explain``.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path

from attest_cli.cache.manifest import OutputFile, outputs_digest
from attest_cli.cache.statindex import FileState, StatIndex, signature_of
from attest_cli.pathspec import expand, is_glob

# The temp names restore.WorkspaceWriter writes before renaming: a concurrent run restoring
# into the same outputs must not have them captured as outputs.
_RESTORE_TEMP = re.compile(r"(?:^|/)\.[^/]+\.[0-9a-f]{8}\.tmp$")


def describe(root: Path, patterns: Sequence[str], index: StatIndex, *, contents: bool = True
             ) -> tuple[list[OutputFile], list[str]]:
    """The files, symlinks and directories the patterns cover; and declared paths missing.

    ``contents=False`` (the store, which reads each file once to keep it and digests what it
    read) leaves a regular file's digest empty instead of hashing it here: a file just
    written is too new for the stat index to keep its digest anyway (its racy rule), so the
    hash here was a second read of every output for nothing."""
    stats: dict[str, os.stat_result] = {}  # a declared file's lstat, taken once
    rels = [r for r in expand(root, patterns, stats=stats) if not _RESTORE_TEMP.search(r)]
    files = [OutputFile(path=s.path, kind=s.kind, mode=s.mode, digest=s.digest, size=s.size,
                        target=s.target)
             for s in (index.scan(root, rels, stats=stats) if contents
                       else _without_contents(root, rels, stats, index))]
    dirs: dict[str, OutputFile] = {}
    missing: list[str] = []
    found = {f.path for f in files if f.kind in ("file", "symlink")}
    for pattern in patterns:
        if is_glob(pattern) or pattern in found:
            continue  # a declared file just scanned: present, and no directory to walk
        base = root / pattern
        if not base.exists() and not base.is_symlink():
            missing.append(pattern)
            continue
        if base.is_dir() and not base.is_symlink():
            for dirpath, dirnames, _files in os.walk(base):
                here = Path(dirpath)
                rel = here.relative_to(root).as_posix()
                dirs[rel] = OutputFile(path=rel, kind="dir",
                                       mode=stat.S_IMODE(here.stat().st_mode))
                dirnames[:] = [d for d in dirnames if not (here / d).is_symlink()]
    return sorted(dirs.values(), key=lambda f: f.path) + files, missing


def _without_contents(root: Path, rels: Sequence[str], stats: dict[str, os.stat_result],
                      index: StatIndex) -> list[FileState]:
    """:meth:`StatIndex.scan`'s states, a regular file's without its digest; anything else
    (a link, a directory, a special file) is scanned as usual."""
    out: list[FileState] = []
    prefix = str(root).rstrip("/") + "/"
    for rel in rels:
        st = stats.get(rel)
        if st is None:
            try:
                st = os.lstat(prefix + rel)
            except OSError:
                out += index.scan(root, [rel])  # gone since expand: scan says what it is
                continue
        if stat.S_ISREG(st.st_mode):
            out.append(FileState(rel, "file", st.st_mode & 0o7777, st.st_size, "",
                                 signature_of(st)))
        else:
            out += index.scan(root, [rel], stats={rel: st})
    return out


def output_digest(root: Path, patterns: Sequence[str], index: StatIndex) -> str:
    return outputs_digest(describe(root, patterns, index)[0])
