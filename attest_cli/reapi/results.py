"""ActionResults into the workspace.

Reading one (a cache hit, or what a remote worker produced) trusts nothing in it: every
output path passes the cache manifest's own checks (:func:`attest_cli.cache.manifest.
check_path` / ``check_link``: plain relative paths, links that stay inside), may not
reach attest's state directory, and must be among the step's declared outputs when the
caller says which those are (or is left out, for remote execution's glob directories);
sizes, counts and tree depth are bounded before anything is downloaded; each blob is
checked against its digest; files are written by the cache's restore code
(:func:`attest_cli.cache.restore.restore_files`: no symlink followed, temp file and rename,
only the executable bit kept). Any breach is :class:`~.errors.UnsafeResult`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attest_cli.cache.manifest import LIMITS, CorruptEntry, OutputFile, check_link, check_path
from attest_cli.cache.restore import UnsafeRestore, restore_files
from attest_cli.digest import bytes_digest
from attest_cli.pathspec import STATE_DIR
from attest_cli.reapi import digests
from attest_cli.reapi.cas import Cas, check_digest
from attest_cli.reapi.errors import UnsafeResult
from attest_cli.reapi.protos import re_pb2

MAX_TREE_BYTES = 64 * 1024 * 1024  # one serialised Tree of an output directory (bytes)
MAX_LOG_BYTES = 64 * 1024 * 1024  # stdout or stderr of one action kept (bytes)


@dataclass(frozen=True)
class Limits:
    max_total_bytes: int  # all output files together (cache.max_entry_size)
    max_files: int = LIMITS.max_files
    max_depth: int = LIMITS.max_depth
    max_log_bytes: int = MAX_LOG_BYTES
    max_tree_bytes: int = MAX_TREE_BYTES


@dataclass(frozen=True)
class RemoteOutput:
    """One output as attest restores it, with the REAPI digest of its content."""

    file: OutputFile  # digest is filled in (attest's BLAKE3) once the content is read
    remote_digest: Any | None  # files only


def _checked(path: str) -> str:
    """A plain relative path (the manifest's rules) outside attest's state directory."""
    try:
        check_path(path)
    except CorruptEntry as exc:
        raise UnsafeResult(f"output {exc}") from None
    if path.split("/", 1)[0] == STATE_DIR:
        raise UnsafeResult(f"output {path!r} is inside attest's state directory {STATE_DIR}/")
    return path


def _link(path: str, target: str) -> RemoteOutput:
    try:
        check_link(path, target)
    except CorruptEntry as exc:
        raise UnsafeResult(str(exc)) from None
    return RemoteOutput(OutputFile(path=path, kind="symlink", mode=0o777,
                                   digest=bytes_digest(target.encode()), target=target), None)


def _symlinks(result: Any) -> list[Any]:
    """The result's symlinks: ``output_symlinks`` (v2.1), else the deprecated per-kind
    fields, which v2.1 servers fill *as well* for older clients (not both: one link each)."""
    if result.output_symlinks:
        return list(result.output_symlinks)
    return [*result.output_file_symlinks, *result.output_directory_symlinks]


def plan(result: Any, cas: Cas, limits: Limits,
         allowed: Callable[[str], bool] | None = None, *,
         drop_uncovered: bool = False) -> list[RemoteOutput]:
    """The outputs of ``result``, checked; output directories' Trees are fetched (bounded).

    Every path must be safe (:func:`_checked`). A file or symlink that ``allowed`` does not
    cover is refused - or, with ``drop_uncovered``, left out (remote execution: a glob's
    output path is its whole directory, which may hold more than the glob covers). A
    directory that is not covered is never created (its covered files still are)."""
    out: list[RemoteOutput] = []
    total = 0

    def wanted(path: str, kind: str) -> bool:
        """Check ``path``; whether to restore it."""
        _checked(path)
        if allowed is None or allowed(path):
            return True
        if kind == "dir" or drop_uncovered:
            return False
        raise UnsafeResult(f"output {path!r} is not among the step's declared outputs")

    def add(item: RemoteOutput) -> None:
        out.append(item)
        if len(out) > limits.max_files:
            raise UnsafeResult(f"more than {limits.max_files} outputs")

    def add_file(path: str, digest: Any, executable: bool) -> None:
        nonlocal total
        if not wanted(path, "file"):
            return
        check_digest(digest, cas.fn, limits.max_total_bytes, f"output {path!r}")
        total += digest.size_bytes
        if total > limits.max_total_bytes:
            raise UnsafeResult(f"outputs claim more than {limits.max_total_bytes} bytes "
                               "together (cache.max_entry_size)")
        add(RemoteOutput(OutputFile(path=path, kind="file", mode=0o755 if executable else 0o644,
                                    size=digest.size_bytes), digest))

    def add_link(path: str, target: str) -> None:
        if wanted(path, "symlink"):
            add(_link(path, target))

    def add_dir(path: str) -> None:
        if wanted(path, "dir"):
            add(RemoteOutput(OutputFile(path=path, kind="dir", mode=0o755), None))

    for f in result.output_files:
        add_file(f.path, f.digest, f.is_executable)
    for link in _symlinks(result):
        add_link(link.path, link.target)
    for d in result.output_directories:
        base = d.path  # "": the whole input root (a glob at the top)
        if base:
            add_dir(base)
        for rel, node in _tree(cas, d.tree_digest, limits, base):
            if node is None:
                add_dir(rel)
            elif isinstance(node, str):
                add_link(rel, node)
            else:
                add_file(rel, node.digest, node.is_executable)
    seen: set[str] = set()
    for o in out:
        if o.file.path in seen:
            raise UnsafeResult(f"output {o.file.path!r} is listed twice")
        seen.add(o.file.path)
    return out


def _tree(cas: Cas, digest: Any, limits: Limits, base: str) -> list[tuple[str, Any]]:
    """``(path, FileNode | link target | None for a directory)`` of an output Tree."""
    raw = cas.read(digest, limit=limits.max_tree_bytes, what="output tree")
    tree = re_pb2.Tree()
    try:
        tree.ParseFromString(raw)
    except Exception as exc:  # DecodeError: a malformed message from the server
        raise UnsafeResult(f"output tree {digests.key(digest)[:80]} does not parse: "
                           f"{exc}") from None
    children = {digests.key(cas.fn.message_digest(c)[0]): c for c in tree.children}
    found: list[tuple[str, Any]] = []
    stack: list[tuple[str, Any, int]] = [(base, tree.root, 0)]
    while stack:
        prefix, directory, depth = stack.pop()
        if depth > limits.max_depth:
            raise UnsafeResult(f"output tree is deeper than {limits.max_depth} levels")
        for node in [*directory.files, *directory.symlinks, *directory.directories]:
            if "/" in node.name or node.name in ("", ".", ".."):
                raise UnsafeResult(f"output tree has a bad name {node.name[:80]!r}")
            rel = f"{prefix}/{node.name}" if prefix else node.name
            if len(found) >= limits.max_files:
                raise UnsafeResult(f"more than {limits.max_files} outputs")
            if isinstance(node, re_pb2.FileNode):
                found.append((rel, node))
            elif isinstance(node, re_pb2.SymlinkNode):
                found.append((rel, node.target))
            else:
                child = children.get(digests.key(node.digest))
                if child is None:
                    raise UnsafeResult(f"output tree lacks the directory {rel!r}")
                found.append((rel, None))
                stack.append((rel, child, depth + 1))
    return found


def restore(root: Path, outputs: list[RemoteOutput], cas: Cas, limits: Limits, *,
            sink: Callable[[str, bytes], None] | None = None) -> list[OutputFile]:
    """Download and write ``outputs`` below ``root``; the files with attest's digests.
    ``sink(digest, data)`` sees each verified file's content (to keep a local copy)."""
    by_path = {o.file.path: o for o in outputs}
    fetched: dict[str, str] = {}

    def blob(f: OutputFile) -> bytes:
        remote = by_path[f.path].remote_digest
        data = cas.read(remote, limit=limits.max_total_bytes, what=f"output {f.path!r}")
        fetched[f.path] = bytes_digest(data)
        if sink is not None:
            sink(fetched[f.path], data)
        return data

    try:
        restore_files(root, [o.file for o in outputs], blob)
    except UnsafeRestore as exc:
        raise UnsafeResult(str(exc)) from None
    files = []
    for o in outputs:
        f = o.file
        if f.kind == "file":
            f = OutputFile(path=f.path, kind="file", mode=f.mode, digest=fetched[f.path],
                           size=f.size)
        files.append(f)
    return sorted(files, key=lambda f: f.path)


def read_log(cas: Cas, raw: bytes, digest: Any, limit: int = MAX_LOG_BYTES) -> bytes:
    """stdout/stderr of a result: inlined bytes, else fetched by digest (bounded)."""
    if raw:
        if len(raw) > limit:
            raise UnsafeResult(f"a log is {len(raw)} bytes, above the {limit}-byte limit")
        if digest is not None and digest.hash and (
                len(raw) != digest.size_bytes or cas.fn.hexdigest(bytes(raw)) != digest.hash):
            raise UnsafeResult("an inlined log does not match its digest")
        return bytes(raw)
    if digest is None or not digest.hash:
        return b""
    return cas.read(digest, limit=limit, what="log")
