"""Receipt verification: every check in a fixed order, every failure reported.

Order (documented in ``docs/receipts.md``): format, signature, trusted signer, expiry,
pipeline hash, file hashes, policy. A failed check does not stop the later ones, so one
run of ``attest verify`` names everything that is wrong. Results are data
(:class:`VerificationResult`); rendering is elsewhere.

Each group of checks publishes one ``VerificationFinished`` event for the metrics:
``signature`` (signature + signer), ``receipt`` (format, expiry, pipeline, files) and
``policy``; the reason is that of the group's first failure.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attest_cli.attestation.keys import KnownKey, fingerprint, public_text
from attest_cli.attestation.policy import Policy, evaluate
from attest_cli.attestation.receipt import (
    LoadedReceipt,
    parse_time,
    utc_text,
    workspace_digest,
)
from attest_cli.engine.events import Publisher, VerificationFinished

# failure reasons (the metrics' ``reason`` label)
INVALID_SIGNATURE = "invalid_signature"
UNTRUSTED_SIGNER = "untrusted_signer"
EXPIRED = "expired"
HASH_MISMATCH = "hash_mismatch"
POLICY_VIOLATION = "policy_violation"
MALFORMED = "malformed"

CHECK_ORDER = ("format", "signature", "signer", "expiry", "pipeline", "files", "policy")
MAX_FILE_LINES = 20


@dataclass(frozen=True)
class Check:
    """One line of a verification: ``status`` is ok, fail, warn or skip."""

    name: str
    status: str
    detail: str
    reason: str | None = None

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.name, "status": self.status, "reason": self.reason,
                "detail": self.detail}


@dataclass
class VerificationResult:
    path: str
    form: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(c.failed for c in self.checks)

    @property
    def reasons(self) -> list[str]:
        return sorted({c.reason for c in self.checks if c.failed and c.reason})

    def to_dict(self) -> dict[str, Any]:
        return {"receipt": self.path, "form": self.form, "ok": self.ok,
                "reasons": self.reasons, "checks": [c.to_dict() for c in self.checks]}


@dataclass
class VerifyOptions:
    """What to check against. ``trusted`` is the set of acceptable signers."""

    root: Path
    trusted: list[KnownKey] = field(default_factory=list)
    required_key: bytes | None = None  # --public-key: the receipt must be signed by this
    check_signatures: bool = True
    pipeline_hash: str | None = None  # of the current pipeline; None = skip the check
    pipeline_label: str = "attest.yaml"
    pipeline_problem: str | None = None  # why the current pipeline could not be hashed
    policy: Policy | None = None
    now: float | None = None


class ReceiptVerifier:
    """Runs the checks on loaded receipts and reports each group on the event bus."""

    def __init__(self, options: VerifyOptions, bus: Publisher | None = None) -> None:
        self.options = options
        self.bus = bus
        self._digests: dict[str, str | None] = {}

    def _publish(self, kind: str, checks: list[Check], started: float) -> None:
        if self.bus is None:
            return
        failed = [c for c in checks if c.failed]
        self.bus.publish(VerificationFinished(
            kind=kind, ok=not failed, reason=failed[0].reason if failed else None,
            duration=time.perf_counter() - started))

    def verify(self, receipt: LoadedReceipt) -> VerificationResult:
        now = time.time() if self.options.now is None else self.options.now
        result = VerificationResult(path=receipt.path, form=receipt.form)
        t0 = time.perf_counter()
        fmt = self._format(receipt)
        format_seconds = time.perf_counter() - t0

        t1 = time.perf_counter()
        sig_checks = self._signature(receipt)
        if self.options.check_signatures:
            self._publish("signature", sig_checks, t1)

        t2 = time.perf_counter()
        rest = [self._expiry(receipt, now), self._pipeline(receipt), *self._files(receipt)]
        # the receipt group's time is format + expiry + pipeline + files (not the signature)
        self._publish("receipt", [fmt, *rest], t2 - format_seconds)

        result.checks = [fmt, *sig_checks, *rest]
        if self.options.policy is not None:
            t3 = time.perf_counter()
            signature_ok = (not any(c.failed for c in sig_checks)
                            if self.options.check_signatures else None)
            policy_checks = self._policy(receipt, signature_ok, now)
            self._publish("policy", policy_checks, t3)
            result.checks.extend(policy_checks)
        return result

    # -- the checks, in order ------------------------------------------------------------
    def _format(self, receipt: LoadedReceipt) -> Check:
        if receipt.problems:
            return Check("format", "fail", "; ".join(receipt.problems), MALFORMED)
        kind = "in-toto Statement in a DSSE envelope" if receipt.form == "dsse" else \
            str(receipt.body["schema"])
        return Check("format", "ok", f"{kind}, {len(receipt.steps)} step(s)")

    def _signature(self, receipt: LoadedReceipt) -> list[Check]:
        if not self.options.check_signatures:
            return [Check("signature", "skip", "--no-signatures"),
                    Check("signer", "skip", "--no-signatures")]
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        assert receipt.signer is not None and receipt.signature is not None
        key = self.options.required_key or receipt.signer
        try:
            Ed25519PublicKey.from_public_bytes(key).verify(receipt.signature,
                                                           receipt.signed_message)
            sig = Check("signature", "ok", f"valid Ed25519 signature by {fingerprint(key)}")
        except (InvalidSignature, ValueError):
            by = "the --public-key" if self.options.required_key else \
                f"the receipt's signer {fingerprint(key)}"
            what = "envelope payload" if receipt.form == "dsse" else "receipt's content"
            sig = Check("signature", "fail", f"the signature does not match the {what} "
                        f"under {by}", INVALID_SIGNATURE)
        return [sig, self._signer(receipt)]

    def _signer(self, receipt: LoadedReceipt) -> Check:
        signer = receipt.signer
        assert signer is not None
        name = fingerprint(signer)
        if self.options.required_key is not None and signer != self.options.required_key:
            return Check("signer", "fail", f"signed by {name} ({public_text(signer)}), not by "
                         f"the --public-key {fingerprint(self.options.required_key)}",
                         UNTRUSTED_SIGNER)
        for known in self.options.trusted:
            if known.raw == signer:
                return Check("signer", "ok", f"{name} is trusted ({known.origin}: "
                             f"{known.source})")
        hint = ("no trusted keys are configured; " if not self.options.trusted else "")
        return Check("signer", "fail", f"{name} ({public_text(signer)}) is not trusted; "
                     f"{hint}trust it with 'attest keys trust FILE' or name it with "
                     "--public-key/--trusted-keys", UNTRUSTED_SIGNER)

    def _expiry(self, receipt: LoadedReceipt, now: float) -> Check:
        expires = receipt.body.get("expires_at")
        if expires is None:
            return Check("expiry", "ok", "no expiry set")
        at = parse_time(expires)
        if now > at:
            return Check("expiry", "fail", f"expired at {utc_text(at)}", EXPIRED)
        return Check("expiry", "ok", f"valid until {utc_text(at)}")

    def _pipeline(self, receipt: LoadedReceipt) -> Check:
        o = self.options
        if o.pipeline_problem is not None:
            return Check("pipeline", "fail", o.pipeline_problem, HASH_MISMATCH)
        if o.pipeline_hash is None:
            return Check("pipeline", "skip", "--no-pipeline")
        recorded = receipt.body["pipeline_hash"]
        if recorded == o.pipeline_hash:
            return Check("pipeline", "ok", f"matches {o.pipeline_label}")
        return Check("pipeline", "fail", f"{o.pipeline_label} changed since the run "
                     f"(receipt {_short(recorded)}, now {_short(o.pipeline_hash)})",
                     HASH_MISMATCH)

    def _digest(self, rel: str) -> str | None:
        if rel not in self._digests:
            self._digests[rel] = workspace_digest(self.options.root / rel)
        return self._digests[rel]

    def _files(self, receipt: LoadedReceipt) -> list[Check]:
        expected: dict[str, str] = {}
        for step in receipt.steps:  # a later step's record of a path wins
            for entry in (*step["inputs"], *step["outputs"]):
                expected[entry["path"]] = entry["hash"]
        bad: list[Check] = []
        for rel, digest in sorted(expected.items()):
            actual = self._digest(rel)
            if actual == digest:
                continue
            detail = (f"{rel}: missing from the workspace" if actual is None else
                      f"{rel}: content differs (receipt {_short(digest)}, "
                      f"workspace {_short(actual)})")
            bad.append(Check("files", "fail", detail, HASH_MISMATCH))
        if not bad:
            return [Check("files", "ok", f"{len(expected)} file(s) match the workspace")]
        if len(bad) > MAX_FILE_LINES:
            more = len(bad) - MAX_FILE_LINES
            bad = [*bad[:MAX_FILE_LINES],
                   Check("files", "fail", f"... and {more} more file(s)", HASH_MISMATCH)]
        return bad

    def _policy(self, receipt: LoadedReceipt, signature_ok: bool | None,
                now: float) -> list[Check]:
        assert self.options.policy is not None
        out = []
        for outcome in evaluate(self.options.policy, receipt, signature_ok=signature_ok,
                                now=now):
            name = f"policy {outcome.rule.name}"
            if outcome.ok:
                out.append(Check(name, "ok", outcome.detail))
            elif outcome.failed:
                out.append(Check(name, "fail", outcome.detail, POLICY_VIOLATION))
            else:
                out.append(Check(name, "warn", f"{outcome.detail} (enforcement: warn)",
                                 POLICY_VIOLATION))
        return out


def _short(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    return f"{algo}:{hexpart[:12]}…"
