"""The manifest of a cache entry: what a step produced, by content digest (Bazel-style).

An entry is one small JSON manifest plus one content-addressed blob per distinct file
content (and one for the captured log, unless it is empty). Blobs are shared between
entries, each is checked against its digest when read, and restoring needs no archive
parsing at all. Small files are held in the manifest itself (``inline``, base64), as
REAPI's ``ActionResult`` and ccache's result files hold them: an entry of small outputs is
one object to write, upload, fetch and restore from, instead of one per file plus one
(see :data:`INLINE_FILE_BYTES`). Inline content is checked against the file's digest
and size when the manifest is parsed.

A manifest may come from a shared remote cache, so :func:`parse` trusts nothing: every
field is type-checked and every path must be a plain relative path (no ``/`` prefix, no
``..``, no empty or ``.`` component, no NUL). Anything else makes the entry corrupt.
Sizes are bounded before they cost memory (:class:`ManifestLimits`): the raw manifest's
bytes before it is parsed, then the number of files, each path's length and depth, each
symlink target's length and the number of key components.
"""

from __future__ import annotations

import binascii
import re
from typing import Any

from attest_cli import compactjson
from attest_cli.cache.keys import encode
from attest_cli.digest import bytes_digest
from attest_cli.record import FrozenRecord, Record, fields_of

MANIFEST_VERSION = 2  # 2: small files inline; no blob for an empty log
# A file of at most this many bytes is held in the manifest, while the manifest's inline
# content stays within INLINE_ENTRY_BYTES (later files are blobs): manifests stay small
# to parse, and content shared between many entries mostly lives in larger files.
INLINE_FILE_BYTES = 16 * 1024
INLINE_ENTRY_BYTES = 64 * 1024
_DIGEST = re.compile(r"^blake3:[0-9a-f]{64}$")


class ManifestLimits(FrozenRecord):
    """What a manifest may hold (documented in docs/cache.md)."""

    max_bytes: int  # the raw JSON, checked before parsing
    max_files: int
    max_path_length: int  # characters of a path or a symlink target
    max_depth: int  # components of a path
    max_components: int  # key components recorded with the entry

    def __init__(self, max_bytes: int = 64 * 1024 * 1024, max_files: int = 200_000,
                 max_path_length: int = 4096, max_depth: int = 128,
                 max_components: int = 1_000_000) -> None:
        self.__dict__.update(max_bytes=max_bytes, max_files=max_files,
                             max_path_length=max_path_length, max_depth=max_depth,
                             max_components=max_components)


LIMITS = ManifestLimits()


class CorruptEntry(Exception):
    """A manifest or blob that cannot be trusted; the entry is deleted and treated as a miss."""


class OutputFile(FrozenRecord):
    path: str
    kind: str  # file | symlink | dir
    mode: int
    digest: str  # files: blake3 of content; symlinks: blake3 of the link text
    size: int
    target: str | None  # symlinks only
    data: bytes | None  # files held in the manifest (inline), checked when parsed

    def __init__(self, path: str, kind: str, mode: int = 0o644, digest: str = "",
                 size: int = 0, target: str | None = None, data: bytes | None = None) -> None:
        self.__dict__.update(path=path, kind=kind, mode=mode, digest=digest, size=size,
                             target=target, data=data)


class Manifest(Record):
    key: str
    step: str
    files: list[OutputFile]
    log_digest: str
    log_size: int
    exit_code: int
    wall_seconds: float
    created_at: float
    components: dict[str, str]
    version: int

    def __init__(self, key: str, step: str, files: list[OutputFile], log_digest: str,
                 log_size: int, exit_code: int = 0, wall_seconds: float = 0.0,
                 created_at: float = 0.0, components: dict[str, str] | None = None,
                 version: int = MANIFEST_VERSION) -> None:
        self.key = key
        self.step = step
        self.files = files
        self.log_digest = log_digest
        self.log_size = log_size
        self.exit_code = exit_code
        self.wall_seconds = wall_seconds
        self.created_at = created_at
        self.components = {} if components is None else components
        self.version = version

    @property
    def output_digest(self) -> str:
        return outputs_digest(self.files)

    @property
    def blob_digests(self) -> set[str]:
        """The blobs the entry names: its files' not held inline, its log's unless empty."""
        out = {f.digest for f in self.files if f.kind == "file" and f.data is None}
        if self.log_size or self.log_digest != EMPTY_DIGEST:
            out.add(self.log_digest)
        return out

    @property
    def stored_bytes(self) -> int:
        return sum(f.size for f in self.files if f.kind == "file") + self.log_size

    def to_json(self) -> bytes:
        """What ``json.dumps(asdict(self), sort_keys=True)`` gave, built directly and encoded
        by orjson: asdict's deep copy and the standard encoder were a tenth of a store (a
        step with 10,000 inputs has 10,000 key components)."""
        from attest_cli.compactjson import dumps

        data = {name: getattr(self, name) for name in _MANIFEST_FIELDS}
        data["files"] = [_file_json(f) for f in self.files]
        return dumps(data, sort_keys=True)


_MANIFEST_FIELDS = fields_of(Manifest)
_FILE_FIELDS = tuple(name for name in fields_of(OutputFile) if name != "data")
EMPTY_DIGEST = bytes_digest(b"")


def _file_json(f: OutputFile) -> dict[str, Any]:
    out = {name: getattr(f, name) for name in _FILE_FIELDS}
    if f.data is not None:
        out["inline"] = binascii.b2a_base64(f.data, newline=False).decode("ascii")
    return out


def inline_small(files: list[OutputFile], contents: dict[str, bytes]) -> list[OutputFile]:
    """``files`` with the small ones' content (from ``contents``, by digest) held inline,
    within :data:`INLINE_ENTRY_BYTES` for the whole entry, in the files' order."""
    budget = INLINE_ENTRY_BYTES
    out = []
    for f in files:
        if f.kind == "file" and f.size <= INLINE_FILE_BYTES and f.size <= budget:
            budget -= f.size
            f = OutputFile(path=f.path, kind=f.kind, mode=f.mode, digest=f.digest,
                           size=f.size, data=contents[f.digest])
        out.append(f)
    return out


def outputs_digest(files: list[OutputFile]) -> str:
    """One digest of a step's outputs: what downstream keys depend on (``needs:STEP``)."""
    pairs = []
    for f in files:
        if f.kind == "dir":
            continue  # directories carry no content; their files do
        exe = "x" if f.kind == "file" and f.mode & 0o111 else "-"
        pairs.append((f.path, f"{f.kind}:{exe}:{f.digest}"))
    return bytes_digest(encode(pairs))


def check_path(rel: Any, limits: ManifestLimits = LIMITS) -> str:
    """A manifest path must be a normalized relative POSIX path, within the limits."""
    if not isinstance(rel, str) or not rel or "\0" in rel or "\\" in rel:
        raise CorruptEntry(f"bad path {str(rel)[:80]!r}")
    if len(rel) > limits.max_path_length:
        raise CorruptEntry(f"a path is longer than {limits.max_path_length} characters")
    if rel.count("/") >= limits.max_depth:
        raise CorruptEntry(f"a path is deeper than {limits.max_depth} components")
    if rel.startswith("/"):  # string checks: this runs for every output of every hit
        raise CorruptEntry(f"absolute path {rel!r}")
    parts = rel.split("/")
    if "" in parts or "." in parts or ".." in parts:
        raise CorruptEntry(f"path {rel!r} is not a plain relative path")
    return rel


def check_link(rel: str, target: Any, limits: ManifestLimits = LIMITS) -> str:
    """A symlink may only point inside the workspace, by a relative path."""
    if not isinstance(target, str) or not target or "\0" in target or \
            len(target) > limits.max_path_length:
        raise CorruptEntry(f"bad symlink target for {rel!r}")
    if target.startswith("/"):
        raise CorruptEntry(f"symlink {rel!r} points to an absolute path")
    depth = len(rel.split("/")) - 1
    for part in target.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                raise CorruptEntry(f"symlink {rel!r} points outside the workspace")
        elif part not in ("", "."):
            depth += 1
    return target


def parse(raw: bytes, *, key: str, limits: ManifestLimits = LIMITS) -> Manifest:
    """Validate an untrusted manifest; raise :class:`CorruptEntry` on anything odd."""
    if len(raw) > limits.max_bytes:
        raise CorruptEntry(f"manifest is {len(raw)} bytes, above the {limits.max_bytes}-byte "
                           "limit")
    try:
        data = compactjson.loads(raw)  # orjson; the standard library for what it refuses
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptEntry(f"manifest is not JSON ({exc})") from None
    except RecursionError:
        raise CorruptEntry("manifest is nested too deeply") from None
    if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
        raise CorruptEntry("unknown manifest version")
    if data.get("key") != key:
        raise CorruptEntry("manifest belongs to another key")
    files = []
    seen: set[str] = set()
    links: list[str] = []
    inline_budget = INLINE_ENTRY_BYTES
    listed = _typed(data, "files", list)
    if len(listed) > limits.max_files:
        raise CorruptEntry(f"manifest lists {len(listed)} files, above the limit of "
                           f"{limits.max_files}")
    for item in listed:
        if not isinstance(item, dict):
            raise CorruptEntry("bad file entry")
        rel = check_path(item.get("path"), limits)
        if rel in seen:
            raise CorruptEntry(f"duplicate path {rel!r}")
        seen.add(rel)
        kind = item.get("kind")
        mode = item.get("mode")
        if kind not in ("file", "symlink", "dir") or not isinstance(mode, int) or \
                not 0 <= mode <= 0o7777:
            raise CorruptEntry(f"bad kind or mode for {rel!r}")
        digest, size, target = item.get("digest", ""), item.get("size", 0), item.get("target")
        if kind != "dir" and (not isinstance(digest, str) or not _DIGEST.match(digest)):
            raise CorruptEntry(f"bad digest for {rel!r}")
        if not isinstance(size, int) or size < 0:
            raise CorruptEntry(f"bad size for {rel!r}")
        if kind == "symlink":
            check_link(rel, target, limits)
            links.append(rel)
        content = None
        if "inline" in item:
            if kind != "file" or size > INLINE_FILE_BYTES or size > inline_budget:
                raise CorruptEntry(f"inline content for {rel!r} is not allowed")
            inline_budget -= size
            content = _inline(rel, item["inline"], size, digest)
        files.append(OutputFile(path=rel, kind=kind, mode=mode & 0o7777, digest=digest or "",
                                size=size, target=target if kind == "symlink" else None,
                                data=content))
    # No entry may live below a symlink of the same entry (writing through a planted link).
    for link in links:
        below = link + "/"
        if any(f.path.startswith(below) for f in files):
            raise CorruptEntry(f"entry writes below its own symlink {link!r}")
    log_digest = _typed(data, "log_digest", str)
    if not _DIGEST.match(log_digest):
        raise CorruptEntry("bad log digest")
    components = _typed(data, "components", dict)
    if len(components) > limits.max_components:
        raise CorruptEntry(f"manifest has more than {limits.max_components} key components")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in components.items()):
        raise CorruptEntry("bad components")
    try:
        return Manifest(key=key, step=_typed(data, "step", str), files=files,
                        log_digest=log_digest, log_size=_typed(data, "log_size", int),
                        exit_code=_typed(data, "exit_code", int),
                        wall_seconds=float(_typed(data, "wall_seconds", (int, float))),
                        created_at=float(_typed(data, "created_at", (int, float))),
                        components=components)
    except (TypeError, ValueError) as exc:
        raise CorruptEntry(str(exc)) from None


def _inline(rel: str, text: Any, size: int, digest: str) -> bytes:
    """Inline content, decoded and checked: the size first (base64 is 4 characters per 3
    bytes, so the text is bounded before it is decoded), then the digest."""
    if not isinstance(text, str) or len(text) > (size + 2) // 3 * 4:
        raise CorruptEntry(f"bad inline content for {rel!r}")
    try:
        data = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        raise CorruptEntry(f"inline content for {rel!r} is not base64") from None
    if len(data) != size or bytes_digest(data) != digest:
        raise CorruptEntry(f"inline content for {rel!r} does not match its digest")
    return data


def _typed(data: dict[str, Any], name: str, kind: Any) -> Any:
    value = data.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise CorruptEntry(f"manifest field {name!r} is missing or of the wrong type")
    return value
