"""Expansion of a step's declared ``inputs``/``outputs``: files, directories and globs.

One implementation serves the cache key, output archiving and receipts, so that the three
never disagree about which files a declaration covers. Paths are returned relative to the
project root, POSIX-style and sorted; declarations that would escape the root are rejected.
"""

from __future__ import annotations

import functools
import glob
import itertools
import os
import re
import stat
from collections.abc import Iterable
from fnmatch import fnmatchcase
from pathlib import Path

from attest_cli.errors import InputError

_MAGIC = set("*?[")
# attest's own state (keys, history, cache, logs), relative to the project root
STATE_DIR = ".attest"
# Declarations are data: one that reaches a whole file system (``inputs: [link]`` with the
# link pointing at ``/``, followed as inputs are) must end, not hash every file there. No
# step's tree is near this; the run then says so and runs the step without the cache.
MAX_EXPANDED = 1_000_000


class TooManyPaths(InputError):
    """A declaration expands to more than :data:`MAX_EXPANDED` paths (bad input: one line
    and exit 2 from a command; a run's lookup that meets it runs the step uncached)."""


def _check_count(found: set[str], top: str) -> None:
    if len(found) > MAX_EXPANDED:
        raise TooManyPaths(f"'{top}' expands to more than {MAX_EXPANDED:,} paths (a link "
                           "out of the project? a build tree among the inputs?)")


def is_glob(pattern: str) -> bool:
    return not _MAGIC.isdisjoint(pattern)


def check_relative(pattern: str) -> str:
    """Reject absolute paths and ``..`` components (a declaration may not leave the root).

    String operations, not ``PurePosixPath``: every declaration of every step passes here
    on each load (a tenth of a 5,000-step no-op run went to building path objects)."""
    if pattern.startswith("/") or ".." in pattern.split("/"):
        raise InputError(f"'{pattern}' must be a relative path inside the project "
                         "(no leading '/', no '..')")
    return pattern


def may_reach(pattern: str, target: str) -> bool:
    """Whether :func:`expand` of ``pattern`` could take ``target`` or anything below it.

    ``target`` is a relative POSIX path. A pattern reaches it when it matches ``target``,
    one of its parent directories (a matched directory covers its whole tree) or something
    below it. As with ``expand``, a ``*``/``?``/``[..]``/``**`` component never matches a
    name starting with a dot unless the component itself starts with one; ``.`` and empty
    components mean the project root, which covers everything.
    """
    parts = [p for p in pattern.split("/") if p not in ("", ".")]
    goal = [p for p in target.split("/") if p not in ("", ".")]
    if not is_glob(pattern):
        # a literal reaches the target when one path is a prefix of the other (what the
        # matcher below concludes, without its recursion: each output meets each
        # protected path on every load)
        n = min(len(parts), len(goal))
        return parts[:n] == goal[:n]

    def match(pi: int, ti: int) -> bool:
        if pi == len(parts):
            # matched the target or a parent of it - but a ``**`` that matched nothing at
            # all is not the root: glob never returns the root for ``**``
            return ti > 0 or not parts
        if ti == len(goal):
            return True  # the pattern continues below the target
        comp, name = parts[pi], goal[ti]
        if comp == "**":
            return match(pi + 1, ti) or (not name.startswith(".") and match(pi, ti + 1))
        if name.startswith(".") and not comp.startswith(".") and is_glob(comp):
            return False
        return (fnmatchcase(name, comp) if is_glob(comp) else name == comp) and \
            match(pi + 1, ti + 1)
    return match(0, 0)


def expand(root: Path, patterns: Iterable[str], *, follow_links: bool = False,
           stats: dict[str, os.stat_result] | None = None,
           dirs: dict[str, os.stat_result | None] | None = None) -> list[str]:
    """Every regular file (or symlink) the patterns cover, relative to ``root``, sorted.

    A directory covers everything below it; ``**`` matches any depth; a pattern that
    matches nothing contributes nothing (the caller decides whether that is an error).

    ``follow_links`` is how *inputs* are expanded (what a step can see): a symlink to a
    directory is listed and its tree walked too (each directory once, so a link loop ends),
    and an empty directory is listed itself. Outputs are expanded without it: their links
    are recorded, never followed.

    A literal (non-glob) pattern naming a regular file costs one ``lstat``, which also
    answers existence; with ``stats``, that ``lstat`` is handed back (relative path ->
    result) so the stat index need not repeat it. That is the usual input of a step, and
    the five stat calls it took before were a third of a no-op re-run.

    With ``follow_links``, ``dirs`` receives each directory of the trees walked (relative
    path -> its ``stat``, taken just before it was listed): if a directory's signature is
    the same later, and was not racy, its listing is too (see ``fresh.walked_vouchers``).
    A directory that could not be listed, or an entry whose type could not be read, maps
    to None: nothing vouches for what the walk may have missed there.
    """
    root = _resolved(root)
    base = str(root)
    found: set[str] = set()
    walked: set[str] = set()  # directories already covered entirely
    visited: set[tuple[int, int]] = set()  # (dev, inode) of directories walked, following
    for pattern in patterns:
        check_relative(pattern)
        pattern = _strip_dot(pattern)
        head = pattern.rstrip("/")[:-3] if pattern.rstrip("/").endswith("/**") else ""
        head_path = os.path.join(base, head)
        if head and not is_glob(head) and os.path.isdir(head_path) and \
                not os.path.islink(head_path):
            # ``dir/**`` matches ``dir`` itself, which covers everything below it (as ``dir/``
            # does; links inside are recorded, not followed): no need for a slow glob
            matches = [head]
        elif is_glob(pattern):
            matches = sorted(itertools.islice(
                glob.iglob(pattern, root_dir=root, recursive=True, include_hidden=False),
                MAX_EXPANDED + 1))
            if len(matches) > MAX_EXPANDED:
                raise TooManyPaths(f"'{pattern}' matches more than {MAX_EXPANDED:,} paths")
        else:
            literal = pattern.rstrip("/") or "."
            full = os.path.normpath(os.path.join(base, literal))
            try:
                st = os.lstat(full)
            except (OSError, ValueError):  # as os.path.lexists: absent, or not a path
                continue
            if stat.S_ISREG(st.st_mode):  # the usual input: no link to follow, no tree
                rel = _rel_str(base, full)
                found.add(rel)
                if stats is not None:
                    stats[rel] = st
                continue
            matches = [literal]
        for rel in matches:
            rel = os.path.normpath(rel)
            if rel in found:
                continue
            full = os.path.normpath(os.path.join(base, rel))
            if not os.path.lexists(full):
                continue  # glob answers "missing/" for "missing/**"
            if follow_links:
                if os.path.islink(full):
                    found.add(_rel_str(base, full))
                if os.path.isdir(full):
                    _walk_following(base, _rel_str(base, full), found, visited, dirs)
                elif not os.path.islink(full):
                    found.add(_rel_str(base, full))
            elif os.path.isdir(full) and not os.path.islink(full):
                # ``dir/**`` matches the directory and each subdirectory: walk each tree once
                if _under(rel, walked):
                    continue
                walked.add(rel)
                _walk(base, full, found)
            else:
                found.add(_rel_str(base, full))
    return sorted(found)


@functools.lru_cache(maxsize=64)
def _resolved_absolute(root: Path) -> Path:
    return root.resolve()


def _resolved(root: Path) -> Path:
    """``root.resolve()``, remembered for absolute roots: a run expands the declarations of
    every step against the same root, and resolving it ``lstat``s each of its components
    (a fifth of a 5,000-step no-op run). attest's processes are short-lived; a project
    directory re-linked while one runs is not supported."""
    return _resolved_absolute(root) if root.is_absolute() else root.resolve()


def _walk_following(base: str, top: str, found: set[str], visited: set[tuple[int, int]],
                    dirs: dict[str, os.stat_result | None] | None = None) -> None:
    """Add everything below the relative directory ``top``, through directory symlinks.

    A directory already walked (by its device and inode) is not walked again: a link loop
    ends, and a tree reached twice is listed once (under the first path, in sorted order).
    A directory with no entries at all is added itself (a step listing it sees it)."""
    stack = [top]
    while stack:
        rel = stack.pop()
        full = base if rel == "." else os.path.join(base, rel)
        try:
            st = os.stat(full)
            if (st.st_dev, st.st_ino) in visited:
                continue
            visited.add((st.st_dev, st.st_ino))
            if dirs is not None:
                dirs[rel] = st
            with os.scandir(full) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:  # vanished or unreadable: nothing to list
            if dirs is not None:
                dirs[rel] = None
            continue
        if not entries and rel != ".":
            found.add(rel)
        prefix = "" if rel == "." else rel + "/"
        subdirs = []
        for entry in entries:
            child = prefix + entry.name
            try:
                if entry.is_symlink():
                    found.add(child)
                    if entry.is_dir():  # follows the link
                        subdirs.append(child)
                elif entry.is_dir(follow_symlinks=False):
                    subdirs.append(child)
                else:
                    found.add(child)
            except OSError:
                found.add(child)
                if dirs is not None:
                    dirs[child] = None
        _check_count(found, top)
        stack.extend(reversed(subdirs))  # depth first, in sorted order


def _strip_dot(pattern: str) -> str:
    """``./x`` is ``x`` (glob would return ``./`` itself for ``./**``, the whole project)."""
    while pattern.startswith("./") and pattern.rstrip("/") != ".":
        pattern = pattern[2:].lstrip("/") or "."
    return pattern


def _under(rel: str, walked: set[str]) -> bool:
    if rel in walked or "." in walked:
        return True
    parts = rel.split("/")
    return any("/".join(parts[:i]) in walked for i in range(1, len(parts)))


def _walk(base: str, top: str, found: set[str]) -> None:
    """Add every file (and symlink, to a directory too) below ``top``; string ops only, as
    this is the hot path of an unchanged re-run over thousands of inputs."""
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        prefix = _rel_str(base, dirpath)
        prefix = "" if prefix == "." else prefix + "/"
        for name in filenames:
            found.add(prefix + name)
        for name in dirnames:
            if os.path.islink(os.path.join(dirpath, name)):
                found.add(prefix + name)
        _check_count(found, _rel_str(base, top))


def _rel_str(base: str, full: str) -> str:
    if full == base:
        return "."
    if full.startswith(base + "/"):
        return full[len(base) + 1:]
    return Path(os.path.relpath(full, base)).as_posix()


def covers(patterns: Iterable[str], rel: str) -> bool:
    """Whether a declaration covers the relative POSIX path ``rel`` (as :func:`expand` would).

    Used to check paths that come from elsewhere (a cache entry being restored) against what
    a step declares, without touching the file system.
    """
    for pattern in patterns:
        pattern = _strip_dot(pattern)
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
            # like glob(include_hidden=False): ``**`` crosses no name starting with a dot
            out.append(("(?!\\.).*" if i == 0 else ".*") if last else "(?:(?!\\.)[^/]+/)*")
            continue
        piece = _part_regex(part)
        if is_glob(part) and not part.startswith("."):
            piece = "(?!\\.)" + piece
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
