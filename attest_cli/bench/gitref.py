"""Git facts for benchmarks: describe labels, commit and dirty state, temporary worktrees.

A git ref on one side of ``attest benchmark compare`` is checked out with ``git worktree
add --detach`` into a temporary directory, so the user's working tree, index and branches
are never touched; the worktree is removed afterwards even when the benchmark fails.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from attest_cli.errors import AttestError


def git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str] | None:
    """Run git; ``None`` when git is not installed."""
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=60)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _out(args: list[str], cwd: Path) -> str | None:
    proc = git(args, cwd)
    if proc is None or proc.returncode != 0:
        return None
    return proc.stdout.strip() or None


def repo_root(path: Path) -> Path | None:
    top = _out(["rev-parse", "--show-toplevel"], path)
    return Path(top) if top else None


def describe(path: Path, rev: str | None = None) -> str | None:
    """``git describe --tags --always --dirty`` of the work tree (or of ``rev``)."""
    args = ["describe", "--tags", "--always"]
    args += [rev] if rev else ["--dirty"]
    return _out(args, path)


def state(path: Path) -> dict[str, Any] | None:
    """Commit, dirty flag and describe of the work tree at ``path``; None outside git."""
    commit = _out(["rev-parse", "HEAD"], path)
    if commit is None:
        return None
    status = git(["status", "--porcelain", "--untracked-files=no"], path)
    dirty = bool(status and status.returncode == 0 and status.stdout.strip())
    return {"commit": commit, "dirty": dirty, "describe": describe(path)}


def resolve(path: Path, ref: str) -> str | None:
    """The commit ``ref`` names in the repository at ``path``, or None."""
    if ref.startswith("-"):
        return None
    return _out(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], path)


@contextlib.contextmanager
def worktree(root: Path, commit: str) -> Iterator[Path]:
    """A detached checkout of ``commit`` in a temporary directory, removed on exit."""
    parent = Path(tempfile.mkdtemp(prefix="attest-bench-"))
    target = parent / "tree"
    proc = git(["worktree", "add", "--detach", "--quiet", str(target), commit], root)
    if proc is None or proc.returncode != 0:
        shutil.rmtree(parent, ignore_errors=True)
        detail = (proc.stderr.strip().splitlines() or ["git failed"])[-1] if proc else \
            "git is not installed"
        raise AttestError(f"cannot check out {commit[:12]} into a temporary worktree: {detail}")
    try:
        yield target
    finally:
        git(["worktree", "remove", "--force", str(target)], root)
        shutil.rmtree(parent, ignore_errors=True)
        git(["worktree", "prune"], root)
