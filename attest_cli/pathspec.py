"""Expansion of a step's declared ``inputs``/``outputs``: files, directories and globs.

One implementation serves the cache key, output archiving and receipts, so that the three
never disagree about which files a declaration covers. Paths are returned relative to the
project root, POSIX-style and sorted; declarations that would escape the root are rejected.
"""

from __future__ import annotations

import glob
import os
import re
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


def covers(patterns: Iterable[str], rel: str) -> bool:
    """Whether a declaration covers the relative POSIX path ``rel`` (as :func:`expand` would).

    Used to check paths that come from elsewhere (a cache entry being restored) against what
    a step declares, without touching the file system.
    """
    for pattern in patterns:
        if is_glob(pattern):
            if _glob_regex(pattern).fullmatch(rel):
                return True
            continue
        base = pattern.rstrip("/")
        if rel == base or rel.startswith(base + "/") or base in ("", "."):
            return True
    return False


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """``glob.glob(recursive=True)`` semantics as a regex: ``**`` spans directories."""
    out: list[str] = []
    parts = pattern.rstrip("/").split("/")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            out.append(".*" if last else "(?:[^/]+/)*")
            continue
        piece = _part_regex(part)
        out.append(piece + ("" if last else "/"))
    # a directory matched by the pattern covers everything below it
    return re.compile("".join(out) + "(?:/.*)?", re.S)


def _part_regex(part: str) -> str:
    """One path component of a glob: ``*`` and ``?`` never cross a ``/``."""
    out, i = [], 0
    while i < len(part):
        c = part[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif (c == "[" and "]" in part[i + 2:]) or (c == "[" and part[i + 1:i + 2] == "]"):
            end = part.index("]", i + 2)
            body = part[i + 1:end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)
