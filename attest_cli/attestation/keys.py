"""Ed25519 key files, their fingerprints and the trust store.

Private keys are PKCS#8 PEM files written 0600 (OpenSSL reads them); public keys are
SubjectPublicKeyInfo PEM files. Everywhere else (receipts, ``keys list``) a public key is
written ``ed25519:<64 hex digits>``, and every place that reads a public key accepts
either form. The private key is never logged or printed: only its path is.
"""

from __future__ import annotations

import logging
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from attest_cli.atomic import write_atomic
from attest_cli.digest import bytes_digest
from attest_cli.errors import InputError, UsageError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

log = logging.getLogger("attest.verify")

KEY_PREFIX = "ed25519:"
PRIVATE_NAME = "private.key"
PUBLIC_NAME = "public.key"
TRUSTED_DIR = "trusted"
MAX_KEY_FILE = 64 * 1024
_HEX_KEY = re.compile(r"ed25519:([0-9a-f]{64})")


def public_text(raw: bytes) -> str:
    """``ed25519:<hex>``: how receipts and listings name a public key."""
    return KEY_PREFIX + raw.hex()


def fingerprint(raw: bytes) -> str:
    """A short, stable name for a public key (first 16 hex digits of its BLAKE3)."""
    return bytes_digest(raw).split(":", 1)[1][:16]


def sslib_key(raw: bytes) -> dict[str, object]:
    """The public key as securesystemslib (TUF, in-toto) writes a key: keytype, scheme and
    the hex public value."""
    return {"keytype": "ed25519", "keyval": {"public": raw.hex()}, "scheme": "ed25519"}


def dsse_keyid(raw: bytes) -> str:
    """The key id a DSSE envelope names the key by: securesystemslib's (and in-toto's)
    default, SHA-256 of the canonical JSON of :func:`sslib_key`. It is what
    ``SSlibKey.from_crypto`` computes for the exported PEM key, so a third party's
    ``Envelope.verify([key], 1)`` matches the signature without being told an id."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(sslib_key(raw), sort_keys=True, separators=(",", ":"))
                          .encode("ascii")).hexdigest()


def parse_public_text(text: str, *, source: str = "public key") -> bytes:
    """The 32 raw bytes of an ``ed25519:<hex>`` string (InputError otherwise)."""
    m = _HEX_KEY.fullmatch(text.strip())
    if not m:
        raise InputError("expected an Ed25519 public key as 'ed25519:' and 64 lowercase hex "
                         "digits", path=source)
    return bytes.fromhex(m.group(1))


def public_path_for(private: Path) -> Path:
    """Where the public half of ``private`` lives (``public.key`` beside ``private.key``)."""
    return private.with_name(PUBLIC_NAME) if private.name == PRIVATE_NAME \
        else private.with_suffix(".pub")


def _read_small(path: Path, what: str) -> bytes:
    """A key file: a regular file of at most MAX_KEY_FILE bytes (a FIFO is never waited on)."""
    from attest_cli.regularfile import read_regular

    try:
        return read_regular(path, max_bytes=MAX_KEY_FILE, expected=f"a {what} file")
    except InputError as exc:
        if exc.message.endswith("no such file"):
            raise InputError(f"no such {what} file", path=str(path)) from None
        raise


def warn_if_exposed(path: Path) -> bool:
    """Warn when a private key is readable or writable by group or others (like ssh)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return False
    if mode & 0o077:
        log.warning("private key %s has permissions %04o; it should be readable by its owner "
                    "only (chmod 600 %s)", path, mode, path,
                    extra={"fields": {"path": str(path), "mode": f"{mode:04o}"}})
        return True
    return False


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read a PKCS#8 PEM Ed25519 private key (warning when its permissions are too open)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data = _read_small(path, "private key")
    warn_if_exposed(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        # Say what is wrong without echoing any of the key material.
        reason = "it is encrypted" if "encrypted" in str(exc).lower() else \
            "not a PEM private key"
        raise InputError(f"cannot read the private key: {reason}", path=str(path)) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError("the private key is not an Ed25519 key", path=str(path))
    return key


def raw_public(key: Ed25519PrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)


def public_pem(raw: bytes) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    key = Ed25519PublicKey.from_public_bytes(raw)
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def load_public_key(path: Path) -> bytes:
    """The raw 32 bytes of a public key file (PEM, or one ``ed25519:<hex>`` line)."""
    data = _read_small(path, "public key")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise InputError("not a public key (binary data)", path=str(path)) from None
    if text.lstrip().startswith(KEY_PREFIX):
        return parse_public_text(text, source=str(path))
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        if "PRIVATE KEY" in text:
            raise InputError("this is a private key; give the public key (attest keys export)",
                             path=str(path)) from None
        raise InputError("not a PEM public key or 'ed25519:<hex>' line", path=str(path)) from None
    if not isinstance(key, Ed25519PublicKey):
        raise InputError("the public key is not an Ed25519 key", path=str(path))
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class GeneratedKeys:
    private: Path
    public: Path
    public_key: bytes


def generate(directory: Path, *, force: bool = False) -> GeneratedKeys:
    """Create ``private.key`` (0600) and ``public.key`` in ``directory``."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return write_pair(directory / PRIVATE_NAME, Ed25519PrivateKey.generate(), force=force)


def write_pair(private: Path, key: Ed25519PrivateKey, *, force: bool) -> GeneratedKeys:
    """Write both halves: the private key 0600 (atomically, never world-readable at any
    moment, since the temp file gets its mode before any byte is written)."""
    from cryptography.hazmat.primitives import serialization

    public = public_path_for(private)
    if not force:
        for existing in (private, public):
            if existing.exists():
                raise UsageError(f"{existing} already exists; use --force to replace the key "
                                 "(receipts signed with it will no longer verify against it)")
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    private.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(private, pem, mode=0o600)
    raw = raw_public(key)
    write_atomic(public, public_pem(raw), mode=0o644)
    return GeneratedKeys(private=private, public=public, public_key=raw)


def ensure_key(private: Path, *, create: bool) -> tuple[Ed25519PrivateKey, bool]:
    """The signing key at ``private``; create the pair first when allowed and missing."""
    if private.exists() or not create:
        return load_private_key(private), False
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    write_pair(private, key, force=False)
    return key, True


@dataclass(frozen=True)
class KnownKey:
    """A public key attest knows of, and where it came from."""

    raw: bytes
    origin: str  # "own", "trusted", "config"
    source: str  # file path or config value

    @property
    def text(self) -> str:
        return public_text(self.raw)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.raw)


def trust_dir(state_dir: Path) -> Path:
    return state_dir / "keys" / TRUSTED_DIR


def trust(state_dir: Path, raw: bytes) -> tuple[Path, bool]:
    """Add a public key to the trust store; returns its file and whether it was new."""
    path = trust_dir(state_dir) / f"{fingerprint(raw)}.pub"
    if path.exists():
        return path, False
    write_atomic(path, public_pem(raw), mode=0o644)
    return path, True


def trusted_keys(state_dir: Path, configured: list[str], base: Path) -> list[KnownKey]:
    """Keys in the trust store plus ``signing.trusted_keys`` (files or ``ed25519:<hex>``)."""
    out: list[KnownKey] = []
    store = trust_dir(state_dir)
    if store.is_dir():
        for path in sorted(store.glob("*.pub")):
            out.append(KnownKey(load_public_key(path), "trusted", str(path)))
    for entry in configured:
        value = str(entry).strip()
        if not value:
            continue
        if value.startswith(KEY_PREFIX):
            raw = parse_public_text(value, source="signing.trusted_keys")
        else:
            p = Path(value).expanduser()
            raw = load_public_key(p if p.is_absolute() else base / p)
        out.append(KnownKey(raw, "config", value))
    return out


def own_key(private: Path) -> KnownKey | None:
    """The project's own public key, if a key pair exists (never reads more than needed)."""
    public = public_path_for(private)
    if public.exists():
        return KnownKey(load_public_key(public), "own", str(public))
    if private.exists():
        return KnownKey(raw_public(load_private_key(private)), "own", str(private))
    return None
