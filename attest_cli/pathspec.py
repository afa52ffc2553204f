"""Expansion of a step's declared ``inputs``/``outputs``: files, directories and globs.

One implementation serves the cache key, output archiving and receipts, so that the three
never disagree about which files a declaration covers. Paths are returned relative to the
project root, POSIX-style and sorted; declarations that would escape the root are rejected.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from attest_cli.errors import InputError

_MAGIC = set("*?[")


def is_glob(pattern: str) -> bool:
    return any(c in _MAGIC for c in pattern)


def check_relative(pattern: str) -> str:
    """Reject absolute paths and ``..`` components (a declaration may not leave the root)."""
    p = PurePosixPath(pattern)
    if p.is_absolute() or ".." in p.parts:
        raise InputError(f"'{pattern}' must be a relative path inside the project "
                         "(no leading '/', no '..')")
    return pattern


def expand(root: Path, patterns: Iterable[str]) -> list[str]:
    """Every regular file (or symlink) the patterns cover, relative to ``root``, sorted.

    A directory covers everything below it; ``**`` matches any depth; a pattern that
    matches nothing contributes nothing (the caller decides whether that is an error).
    """
    root = root.resolve()
    found: set[str] = set()
    for pattern in patterns:
        check_relative(pattern)
        if is_glob(pattern):
            matches = glob.glob(pattern, root_dir=root, recursive=True, include_hidden=False)
        else:
            matches = [pattern.rstrip("/")] if (root / pattern).exists() or \
                (root / pattern).is_symlink() else []
        for rel in matches:
            full = root / rel
            if full.is_dir() and not full.is_symlink():
                for dirpath, dirnames, filenames in os.walk(full):
                    dirnames.sort()
                    for name in filenames:
                        found.add(_rel(root, Path(dirpath) / name))
                    for name in dirnames:
                        if (Path(dirpath) / name).is_symlink():
                            found.add(_rel(root, Path(dirpath) / name))
            else:
                found.add(_rel(root, full))
    return sorted(found)


def _rel(root: Path, path: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()
