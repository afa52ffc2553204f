"""Receipts: what a run did, signed. Building, signing, writing and reading them back.

A receipt is a plain mapping (schema ``attest.receipt/v2``, documented in
``docs/receipts.md``). The signature covers :func:`signed_bytes`: the canonical form
(:mod:`attest_cli.attestation.canonical`; RFC 8785 for v2, the older form for v1, which
still verifies) of every field except ``signature`` itself, so the YAML and JSON files of
one run verify identically and any edited field is detected.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from attest_cli.atomic import write_atomic
from attest_cli.attestation.canonical import (
    NotCanonicalizable,
    canonical_bytes,
    jcs_bytes,
)
from attest_cli.attestation.keys import KEY_PREFIX
from attest_cli.digest import bytes_digest, file_digest
from attest_cli.engine.run_report import STEP_STATUSES, RunReport, StepResult
from attest_cli.errors import InputError
from attest_cli.jsonfile import parse_json
from attest_cli.pathspec import check_relative, expand
from attest_cli.pipeline.identity import pipeline_hash
from attest_cli.regularfile import read_regular
from attest_cli.yamlfile import LocatedYAML, load_yaml

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from attest_cli.pipeline.model import Pipeline

SCHEMA = "attest.receipt/v2"
# what each schema's signature covers: v2 is RFC 8785 (JCS); v1 (before JCS) is kept so
# receipts signed then still verify
SIGNED_FORMS: dict[str, Callable[[Any], bytes]] = {"attest.receipt/v1": canonical_bytes,
                                                    SCHEMA: jcs_bytes}
MAX_BYTES = 50 * 2**20
SIGNATURE_PREFIX = "ed25519:"
_DIGEST = re.compile(r"blake3:[0-9a-f]{64}")
_SIGNATURE = re.compile(r"ed25519:[0-9a-f]{128}")
_PUBLIC = re.compile(r"ed25519:[0-9a-f]{64}")


def utc_text(when: float) -> str:
    """RFC 3339 UTC with microseconds and ``Z`` (what receipts store)."""
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 time (ValueError when it is not one)."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError("no time zone")
    return value.timestamp()


def _entries(recorded: list[dict[str, str]]) -> list[dict[str, str]] | None:
    """Entries the cache already computed, normalised to ``{path, hash}`` (None if absent)."""
    if not recorded:
        return None
    out = []
    for item in recorded:
        path = item.get("path")
        digest = item.get("hash") or item.get("digest")
        if not isinstance(path, str) or not isinstance(digest, str):
            return None
        out.append({"path": path, "hash": digest})
    return sorted(out, key=lambda e: e["path"])


def workspace_digest(full: Path) -> str | None:
    """The digest a receipt records for a path: a file's content, a symlink's target text
    (as the cache records it; a link is never followed out of the workspace); None when
    there is nothing there to hash."""
    if full.is_symlink():
        return bytes_digest(os.fsencode(os.readlink(full)))
    if full.is_file():
        return file_digest(full)
    return None


def hash_files(root: Path, patterns: tuple[str, ...]) -> list[dict[str, str]]:
    """``{path, hash}`` of every existing file a step's declarations cover."""
    out = []
    for rel in expand(root, patterns):
        digest = workspace_digest(root / rel)
        if digest is not None:
            out.append({"path": rel, "hash": digest})
    return out


def step_entry(result: StepResult, pipeline: Pipeline, mask: Callable[[str], str]
               ) -> dict[str, Any]:
    step = pipeline.steps.get(result.name)
    inputs: list[dict[str, str]] = []
    outputs: list[dict[str, str]] = []
    if step is not None and result.status != "skipped":
        inputs = _entries(result.inputs) or hash_files(pipeline.root, step.inputs)
        outputs = _entries(result.outputs) or hash_files(pipeline.root, step.outputs)
    entry: dict[str, Any] = {
        "name": result.name,
        "command": mask(result.command),
        "status": result.status,
        "exit_code": result.exit_code,
        "duration_secs": round(result.wall_seconds, 6),
        "inputs": inputs,
        "outputs": outputs,
    }
    if result.remote:  # only for a remotely executed step: other receipts keep their shape
        entry["remote"] = {k: str(result.remote[k]) for k in REMOTE_FIELDS
                           if result.remote.get(k) not in (None, "")}
    return entry


def build(report: RunReport, pipeline: Pipeline, *, mask: Callable[[str], str],
          now: float | None = None, expires_in: float | None = None) -> dict[str, Any]:
    """The unsigned receipt of a finished run. Secret values never enter it: commands are
    masked and no environment variable values are recorded at all."""
    now = time.time() if now is None else now
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "pipeline": report.pipeline,
        "pipeline_hash": pipeline_hash(pipeline),
        "run_id": report.run_id,
        "status": report.status,
        "timestamp": utc_text(now),
    }
    if expires_in:
        doc["expires_at"] = utc_text(now + expires_in)
    doc.update({
        "total_duration_secs": round(report.duration_seconds, 6),
        "attest_version": report.attest_version,
        "environment": {
            "os": f"{platform.system()} {platform.release()}",
            "machine": platform.machine(),
            "python": platform.python_version(),
            "hostname": report.hostname or socket.gethostname(),
        },
        "steps": [step_entry(s, pipeline, mask) for s in report.steps],
    })
    return doc


def signed_bytes(doc: dict[str, Any]) -> bytes:
    """Exactly the bytes the Ed25519 signature covers: everything but ``signature``, in the
    canonical form of the receipt's schema (JCS unless it is a v1 receipt)."""
    form = SIGNED_FORMS.get(doc.get("schema"), jcs_bytes)  # type: ignore[arg-type]
    return form({k: v for k, v in doc.items() if k != "signature"})


def sign(doc: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """A copy of ``doc`` with ``signer_public_key`` and ``signature`` set."""
    from attest_cli.attestation.keys import public_text, raw_public

    signed = {k: v for k, v in doc.items() if k != "signature"}
    signed["signer_public_key"] = public_text(raw_public(key))
    signed["signature"] = SIGNATURE_PREFIX + key.sign(signed_bytes(signed)).hex()
    return signed


def render(doc: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    return str(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1_000_000))


def format_for(path: Path) -> str:
    """``json`` or ``yaml`` from the file name (InputError for anything else)."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    raise InputError("a receipt file must end in .yaml, .yml or .json", path=str(path))


def write(doc: dict[str, Any], path: Path) -> Path:
    return write_atomic(path, render(doc, format_for(path)))


# -- reading back ------------------------------------------------------------------------


@dataclass
class LoadedReceipt:
    """A receipt read from disk, validated in shape (not yet verified)."""

    path: str
    body: dict[str, Any]  # every field but the signature
    signature: bytes | None  # raw Ed25519 signature
    signer: bytes | None  # raw public key named in the receipt
    signed_message: bytes = b""  # what the signature must cover
    form: str = "receipt"  # "receipt" or "dsse"
    payload_type: str | None = None
    problems: list[str] = field(default_factory=list)  # format issues that fail the check
    lines: LocatedYAML | None = field(default=None, repr=False)

    @property
    def steps(self) -> list[dict[str, Any]]:
        return list(self.body["steps"])


def read_document(path: Path, *, label: str | None = None) -> tuple[Any, LocatedYAML | None]:
    """Parse a receipt-like file (YAML or JSON): a regular file of at most :data:`MAX_BYTES`,
    built within the value and depth budget of :mod:`attest_cli.yamlfile` (which bounds
    memory and alias expansion), duplicate keys refused."""
    name = label or str(path)
    raw = read_regular(path, max_bytes=MAX_BYTES, label=name, expected="a receipt file")
    if not raw:
        raise InputError("empty file, not a receipt", path=name)
    if path.suffix.lower() == ".json" or raw.lstrip()[:1] == b"{":
        return parse_json(raw, name=name, expected="a receipt"), None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})", path=name) from None
    del raw
    located = load_yaml(path, label=name, text=text)
    return located.data, located


class _Shape:
    """Type checks with precise locations: every problem names file, line and key."""

    def __init__(self, path: str, lines: LocatedYAML | None, prefix: tuple[str, ...] = ()):
        self.path = path
        self.lines = lines
        self.prefix = prefix

    def error(self, message: str, *keys: str) -> InputError:
        full = (*self.prefix, *keys)
        line = self.lines.line(*full) if self.lines else None
        return InputError(message, path=self.path, line=line, key=".".join(full) or None)

    def mapping(self, value: Any, *keys: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(f"expected a mapping, found {_kind(value)}", *keys)
        return value

    def string(self, data: dict[str, Any], key: str, *where: str,
               pattern: re.Pattern[str] | None = None, hint: str = "") -> str:
        value = data.get(key)
        if not isinstance(value, str):
            raise self.error(f"expected a string, found {_kind(value)}", *where, key)
        if pattern is not None and not pattern.fullmatch(value):
            raise self.error(f"malformed value{hint}", *where, key)
        return value

    def number(self, data: dict[str, Any], key: str, *where: str) -> None:
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or \
                not math.isfinite(value) or value < 0:
            raise self.error(f"expected a non-negative number, found {_kind(value)}",
                             *where, key)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


TOP_FIELDS = ("schema", "pipeline", "pipeline_hash", "run_id", "status", "timestamp",
              "expires_at", "total_duration_secs", "attest_version", "environment", "steps",
              "signer_public_key", "signature")
STEP_FIELDS = ("name", "command", "status", "exit_code", "duration_secs", "inputs", "outputs",
               "remote")
# What a receipt records of a remotely executed step (docs/remote.md): where it ran and the
# REAPI Action and ActionResult digests (``sha256:<hex>/<size>``), all strings.
REMOTE_FIELDS = ("backend", "worker", "action_digest", "result_digest")
_REMOTE_DIGEST = re.compile(r"(sha256|blake3):[0-9a-f]{64}/[0-9]{1,20}")


def validate_body(data: Any, *, path: str, lines: LocatedYAML | None = None,
                  prefix: tuple[str, ...] = (), signed: bool = True) -> dict[str, Any]:
    """Check a receipt's shape; hostile or damaged input becomes one located InputError."""
    shape = _Shape(path, lines, prefix)
    doc = shape.mapping(data)
    allowed = TOP_FIELDS if signed else tuple(f for f in TOP_FIELDS if f != "signature")
    for key in doc:
        if key not in allowed:
            raise shape.error(f"unknown receipt field (this attest reads {SCHEMA})", str(key))
    schema = shape.string(doc, "schema")
    if schema not in SIGNED_FORMS:
        raise shape.error(f"unsupported receipt schema {schema!r} (expected "
                          f"{' or '.join(SIGNED_FORMS)})", "schema")
    for key in ("pipeline", "run_id", "status", "attest_version"):
        shape.string(doc, key)
    shape.string(doc, "pipeline_hash", pattern=_DIGEST, hint=" (expected blake3:<64 hex>)")
    for key in ("timestamp", "expires_at"):
        if key == "expires_at" and key not in doc:
            continue
        text = shape.string(doc, key)
        try:
            parse_time(text)
        except ValueError:
            raise shape.error("expected an RFC 3339 time such as 2026-01-31T12:00:00Z",
                              key) from None
    shape.number(doc, "total_duration_secs")
    env = shape.mapping(doc.get("environment"), "environment")
    for key, value in env.items():
        if not isinstance(key, str):
            raise shape.error("keys must be strings", "environment")
        if not isinstance(value, str):
            raise shape.error(f"expected a string, found {_kind(value)}", "environment",
                              str(key))
    steps = doc.get("steps")
    if not isinstance(steps, list):
        raise shape.error(f"expected a list of steps, found {_kind(steps)}", "steps")
    for i, step in enumerate(steps):
        _validate_step(shape, step, str(i))
    shape.string(doc, "signer_public_key", pattern=_PUBLIC,
                 hint=" (expected ed25519:<64 hex>)")
    if signed:
        shape.string(doc, "signature", pattern=_SIGNATURE,
                     hint=" (expected ed25519:<128 hex>)")
    return doc


def _validate_step(shape: _Shape, step: Any, index: str) -> None:
    where = ("steps", index)
    s = shape.mapping(step, *where)
    for key in s:
        if key not in STEP_FIELDS:
            raise shape.error("unknown step field", *where, str(key))
    shape.string(s, "name", *where)
    shape.string(s, "command", *where)
    status = shape.string(s, "status", *where)
    if status not in STEP_STATUSES:
        raise shape.error(f"unknown step status {status!r} (one of {', '.join(STEP_STATUSES)})",
                          *where, "status")
    code = s.get("exit_code")
    if code is not None and (isinstance(code, bool) or not isinstance(code, int)):
        raise shape.error(f"expected an integer or null, found {_kind(code)}", *where,
                          "exit_code")
    shape.number(s, "duration_secs", *where)
    if "remote" in s:
        remote = shape.mapping(s["remote"], *where, "remote")
        for key in remote:
            if key not in REMOTE_FIELDS:
                raise shape.error("unknown remote field", *where, "remote", str(key))
        for key in remote:
            pattern = _REMOTE_DIGEST if key.endswith("_digest") else None
            shape.string(remote, key, *where, "remote", pattern=pattern,
                         hint=" (expected sha256:<64 hex>/<size>)" if pattern else "")
    for kind in ("inputs", "outputs"):
        entries = s.get(kind)
        if not isinstance(entries, list):
            raise shape.error(f"expected a list, found {_kind(entries)}", *where, kind)
        for j, entry in enumerate(entries):
            if _plain_entry(entry):
                continue
            _validate_entry(shape, entry, (*where, kind, str(j)))


def _plain_entry(entry: Any) -> bool:
    """The common, well-formed ``{path, hash}`` (checked fast; 200 of them per receipt)."""
    if type(entry) is not dict or len(entry) != 2:
        return False
    path, digest = entry.get("path"), entry.get("hash")
    return (type(path) is str and type(digest) is str and bool(path)
            and not path.startswith("/") and ".." not in path
            and _DIGEST.fullmatch(digest) is not None)


def _validate_entry(shape: _Shape, entry: Any, where: tuple[str, ...]) -> None:
    """The slow path: say precisely what is wrong with a ``{path, hash}`` entry."""
    e = shape.mapping(entry, *where)
    if set(e) != {"path", "hash"}:
        raise shape.error("expected exactly the keys path and hash", *where)
    rel = shape.string(e, "path", *where)
    try:
        check_relative(rel)
        if not rel:
            raise InputError("an empty path")
    except InputError as exc:
        raise shape.error(exc.message, *where, "path") from None
    shape.string(e, "hash", *where, pattern=_DIGEST, hint=" (expected blake3:<64 hex>)")


def load(path: Path, *, label: str | None = None) -> LoadedReceipt:
    """Read a receipt or an in-toto DSSE envelope; InputError (exit 2) if unusable."""
    name = label or str(path)
    data, lines = read_document(path, label=name)
    if isinstance(data, dict) and "payloadType" in data:
        from attest_cli.attestation.intoto import load_envelope

        return load_envelope(data, path=name)
    doc = validate_body(data, path=name, lines=lines)
    try:
        message = signed_bytes(doc)
    except NotCanonicalizable as exc:
        raise InputError(f"value cannot be verified: {exc}", path=name) from None
    return LoadedReceipt(
        path=name,
        body={k: v for k, v in doc.items() if k != "signature"},
        signature=bytes.fromhex(doc["signature"][len(SIGNATURE_PREFIX):]),
        signer=bytes.fromhex(doc["signer_public_key"][len(KEY_PREFIX):]),
        signed_message=message,
        lines=lines,
    )
