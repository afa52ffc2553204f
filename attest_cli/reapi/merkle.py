"""The input root of a step: its declared inputs as a REAPI Merkle tree of Directory protos.

Only declared inputs are in the tree, which is what makes remote execution hermetic: a step
reading an undeclared file finds nothing there. Inputs are taken as the cache key sees them
(symlinks followed, :func:`attest_cli.cache.inputs.input_paths`), so a link becomes the file
or directory it points to. Each ``Directory`` lists its files and subdirectories sorted by
name (the spec's canonical form, so equal trees have equal digests everywhere); a file
keeps only its executable bit (``is_executable``), like a restored output.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attest_cli.reapi import digests
from attest_cli.reapi.cas import Blob
from attest_cli.reapi.protos import re_pb2

MAX_INPUT_FILES = 200_000  # files in one input root (the manifest's own bound)


class InputError(ValueError):
    """A declared input cannot be put in an input root (a special file, a bad path)."""


@dataclass
class _Node:
    files: dict[str, Any] = field(default_factory=dict)  # name -> FileNode
    dirs: dict[str, _Node] = field(default_factory=dict)


@dataclass
class InputRoot:
    """The tree's root digest, its Directory blobs and where each file's content lives."""

    digest: Any
    directories: dict[str, tuple[Any, bytes]]  # digest key -> (Digest, serialised Directory)
    files: dict[str, tuple[Any, Path]]  # digest key -> (Digest, a path holding the content)

    def blobs(self) -> Iterator[tuple[Any, Blob]]:
        """Every blob of the tree, for :meth:`.cas.Cas.upload` (a file's content is read
        only if the server lacks it)."""
        yield from self.directories.values()
        for digest, path in self.files.values():
            yield digest, path.read_bytes

    def all_digests(self) -> list[Any]:
        return [d for d, _ in self.directories.values()] + [d for d, _ in self.files.values()]


def _parts(rel: str) -> list[str]:
    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") or "\0" in p for p in parts):
        raise InputError(f"input {rel!r} is not a plain relative path")
    return parts


def build(root: Path, rel_paths: Iterable[str], fn: digests.DigestFunction, *,
          max_files: int = MAX_INPUT_FILES, known: Mapping[str, str] | None = None
          ) -> InputRoot:
    """The input root of the files (and empty directories) ``rel_paths`` below ``root``.

    ``known`` maps paths to attest's digests (``blake3:<hex>``) already computed for the
    cache key: with a BLAKE3 server they are the REAPI hashes too, so no file is re-read."""
    tree = _Node()
    files: dict[str, tuple[Any, Path]] = {}
    count = 0
    for rel in sorted(set(rel_paths)):
        parts = _parts(rel)
        full = root / rel
        try:
            st = os.stat(full)  # followed: the key sees a link's target too
        except OSError:
            continue  # vanished or a dangling link: not an input the step can read
        node = tree
        for part in parts[:-1]:
            node = node.dirs.setdefault(part, _Node())
        if stat.S_ISDIR(st.st_mode):
            node.dirs.setdefault(parts[-1], _Node())
            continue
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"input {rel!r} is neither a file nor a directory")
        count += 1
        if count > max_files:
            raise InputError(f"more than {max_files} input files")
        known_hex = (known or {}).get(rel, "") if fn.name == "blake3" else ""
        if known_hex.startswith("blake3:"):
            digest = re_pb2.Digest(hash=known_hex[7:], size_bytes=st.st_size)
        else:
            digest = fn.digest(full.read_bytes())
        files[digests.key(digest)] = (digest, full)
        node.files[parts[-1]] = re_pb2.FileNode(
            name=parts[-1], digest=digest, is_executable=bool(st.st_mode & stat.S_IXUSR))
    directories: dict[str, tuple[Any, bytes]] = {}
    root_digest = _seal(tree, fn, directories)
    return InputRoot(digest=root_digest, directories=directories, files=files)


def _seal(node: _Node, fn: digests.DigestFunction,
          out: dict[str, tuple[Any, bytes]]) -> Any:
    """Serialise ``node`` and its subdirectories (children first); its digest."""
    children = [re_pb2.DirectoryNode(name=name, digest=_seal(child, fn, out))
                for name, child in sorted(node.dirs.items())]
    directory = re_pb2.Directory(files=[node.files[n] for n in sorted(node.files)],
                                 directories=children)
    digest, data = fn.message_digest(directory)
    out[digests.key(digest)] = (digest, data)
    return digest
