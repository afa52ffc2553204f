"""``attest run --sign/--verify/--policy``: sign the run's receipt, and verify it.

A run feature (``attest.run_features`` entry point ``attestation``): ``attach`` returns
at once when none of those options is set. Otherwise it prepares
everything that can fail on bad input (the key, the policy, the output path, the expiry)
before any step runs, so a typo exits 2 without running the pipeline, and adds a
``before_finish`` hook that builds, signs, writes and (with ``--verify``) verifies the
receipt once the steps are done; a receipt that cannot be written or does not verify
fails the run through ``run.fail``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from attest_cli.errors import AttestError, UsageError
from attest_cli.runner.features import Feature

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from attest_cli.attestation.policy import Policy
    from attest_cli.engine.run_report import RunReport
    from attest_cli.runner.features import RunContext

log = logging.getLogger("attest.verify")

RECEIPTS_DIR = "receipts"


def attach(setup: RunContext) -> None:
    o = setup.options
    verify = o.verify or o.policy is not None
    if not (o.sign or verify or o.output or o.expires_in):
        return
    if (o.output or o.expires_in) and not (o.sign or verify):
        raise UsageError("--output and --expires-in describe the receipt; add --sign")
    from attest_cli.attestation.policy import load_policy
    from attest_cli.attestation.receipt import format_for
    from attest_cli.config.schema import lookup, parse_duration

    ctx = setup.ctx
    expires = o.expires_in if o.expires_in is not None else setup.settings["signing.expires_in"]
    expires_in = None
    if expires:
        try:
            expires_in = parse_duration(expires)
        except ValueError as exc:
            where = "--expires-in" if o.expires_in is not None else "signing.expires_in"
            raise UsageError(f"{where} {expires}: {exc}") from None
    output = ctx.path(o.output) if o.output else None
    if output is not None:
        format_for(output)
    policy = load_policy(ctx.path(o.policy), label=o.policy) if o.policy else None
    key_path = ctx.path(setup.settings["signing.key"])
    signer = _Signer(setup, key_path, expires_in, output, verify, policy)
    # First use creates the default key pair; a key named explicitly (ATTEST_SIGNING_KEY,
    # config) must exist, so a typo there never silently signs with a brand-new key.
    signer.load_key(create=setup.settings["signing.key"] == lookup("signing.key").default)
    setup.before_finish(signer.finish)


class _Signer:
    def __init__(self, setup: RunContext, key_path: Path, expires_in: float | None,
                 output: Path | None, verify: bool, policy: Policy | None) -> None:
        self.setup = setup
        self.key_path = key_path
        self.expires_in = expires_in
        self.output = output
        self.verify = verify
        self.policy = policy
        self.key: Ed25519PrivateKey | None = None

    def load_key(self, *, create: bool) -> None:
        from attest_cli.attestation.keys import ensure_key

        self.key, created = ensure_key(self.key_path, create=create)
        if created:
            shown = self.setup.ctx.display(self.key_path)
            log.info("generated a signing key pair: %s (private, mode 0600)", shown,
                     extra={"fields": {"path": shown}})

    def finish(self, report: RunReport) -> None:
        """Sign (and verify); a receipt that cannot be written fails the run, with a reason,
        since the user asked for one."""
        try:
            self._finish(report)
        except (OSError, AttestError) as exc:
            log.error("could not write the signed receipt: %s", exc,
                      extra={"fields": {"error": str(exc)}})
            self.setup.fail(f"could not write the signed receipt: {exc}")

    def _finish(self, report: RunReport) -> None:
        from attest_cli.attestation import receipt as receipts
        from attest_cli.engine.events import ReceiptSigned

        setup = self.setup
        assert self.key is not None
        t0 = time.perf_counter()
        now = time.time()
        doc = receipts.sign(receipts.build(report, setup.pipeline, mask=setup.masker, now=now,
                                           expires_in=self.expires_in), self.key)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{now % 1:.6f}"[1:] + "Z"
        path = receipts.write(doc, setup.ctx.state_dir / RECEIPTS_DIR / f"receipt_{stamp}.yaml")
        if self.output is not None:
            receipts.write(doc, self.output)
        shown = setup.ctx.display(path)
        setup.record("receipt", shown)
        duration = time.perf_counter() - t0
        setup.publish(ReceiptSigned(path=shown, duration=duration))
        log.info("receipt signed: %s", shown,
                 extra={"fields": {"receipt": shown, "steps": len(doc["steps"]),
                                   "duration_ms": round(duration * 1000, 3)}})
        if self.verify:
            self._verify(shown, path)

    def _verify(self, shown: str, path: Path) -> None:
        from attest_cli.attestation.keys import KnownKey, raw_public
        from attest_cli.attestation.receipt import load
        from attest_cli.attestation.verify import ReceiptVerifier, VerifyOptions
        from attest_cli.pipeline.identity import pipeline_hash

        setup = self.setup
        assert self.key is not None
        own = raw_public(self.key)
        options = VerifyOptions(root=setup.pipeline.root,
                                trusted=[KnownKey(own, "own", str(self.key_path))],
                                required_key=own, pipeline_hash=pipeline_hash(setup.pipeline),
                                pipeline_label=setup.ctx.display(setup.pipeline.path),
                                policy=self.policy)
        result = ReceiptVerifier(options, setup).verify(load(path, label=shown))
        for check in result.checks:
            if check.status in ("fail", "warn"):
                level = logging.ERROR if check.status == "fail" else logging.WARNING
                log.log(level, "verification %s: %s: %s", check.status, check.name,
                        check.detail, extra={"fields": {"check": check.name,
                                                        "reason": check.reason}})
        if result.ok:
            log.info("receipt verified: %s", shown,
                     extra={"fields": {"receipt": shown, "checks": len(result.checks)}})
            return
        log.error("receipt verification failed (%s); the run fails",
                  ", ".join(result.reasons), extra={"fields": {"reasons": result.reasons}})
        setup.fail(f"receipt verification failed: {', '.join(result.reasons)}")


FEATURE = Feature("attestation", 400, attach)
