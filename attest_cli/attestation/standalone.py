"""``attest verify`` as a service: resolve receipts, keys, pipeline and policy; verify.

The CLI module parses flags into a :class:`VerifyRequest` and renders the results; this
module does the rest, publishing every verification on an event bus that the run
history (and so ``attest_verifications_total``) observes.
"""

from __future__ import annotations

import glob
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from attest_cli.attestation import keys as keyfiles
from attest_cli.attestation.policy import load_policy
from attest_cli.attestation.receipt import LoadedReceipt, load
from attest_cli.attestation.verify import (
    MALFORMED,
    ReceiptVerifier,
    VerificationResult,
    VerifyOptions,
)
from attest_cli.config.layers import Settings
from attest_cli.context import AppContext
from attest_cli.engine.events import EventBus, VerificationFinished
from attest_cli.errors import InputError, UsageError
from attest_cli.pathspec import is_glob
from attest_cli.pipeline.identity import pipeline_hash
from attest_cli.runner.signals import StopRequest

log = logging.getLogger("attest.verify")


@dataclass
class VerifyRequest:
    receipts: list[str]
    public_key: str | None = None
    trusted_keys: list[str] = field(default_factory=list)
    trusted_only: bool = False
    policy: str | None = None
    check_signatures: bool = True
    check_pipeline: bool = True
    pipeline: str | None = None


def expand_receipts(ctx: AppContext, patterns: list[str]) -> list[Path]:
    """Files named or matched by ``patterns`` (shell globs allowed, quoted or not).

    A name that exists is that file, even with ``[`` or ``*`` in it (as a shell passes an
    argument it could not expand), and only the pattern's own text is a glob: a working
    directory named ``proj[1]`` is not one."""
    out: list[Path] = []
    for pattern in patterns:
        full = ctx.path(pattern)
        if is_glob(pattern) and not full.exists():
            if Path(pattern).expanduser().is_absolute():
                matches = sorted(glob.glob(str(full), recursive=True))
            else:
                matches = sorted(str(ctx.workdir / m) for m in glob.glob(
                    pattern, root_dir=ctx.workdir, recursive=True))
            if not matches:
                raise UsageError(f"no receipt matches '{pattern}'")
            out.extend(Path(m) for m in matches)
        else:
            out.append(full)
    return list(dict.fromkeys(out))  # each file once, in the order given


def trusted_set(ctx: AppContext, settings: Settings, request: VerifyRequest
                ) -> tuple[list[keyfiles.KnownKey], bytes | None]:
    """Acceptable signers and the key the signature must verify under (if any).

    ``--public-key`` names the one signer; ``--trusted-keys`` names the acceptable ones;
    otherwise the trust store, ``signing.trusted_keys`` and the project's own key are
    trusted. ``--trusted-only`` keeps only keys in the trust store or configuration.
    """
    required = None
    explicit: list[keyfiles.KnownKey] = []
    if request.public_key:
        path = ctx.path(request.public_key)
        required = keyfiles.load_public_key(path)
        explicit.append(keyfiles.KnownKey(required, "--public-key", str(path)))
    for item in request.trusted_keys:
        path = ctx.path(item)
        explicit.append(keyfiles.KnownKey(keyfiles.load_public_key(path), "--trusted-keys",
                                          str(path)))
    configured = keyfiles.trusted_keys(ctx.state_dir, list(settings["signing.trusted_keys"]),
                                       ctx.workdir)
    if explicit:
        chosen = explicit
    else:
        own = keyfiles.own_key(ctx.path(settings["signing.key"]))
        chosen = [*configured, *([own] if own else [])]
    if request.trusted_only:
        allowed = {k.raw for k in configured}
        chosen = [k for k in chosen if k.raw in allowed]
    return chosen, required


def _pipeline_state(ctx: AppContext, request: VerifyRequest, options: VerifyOptions) -> None:
    if not request.check_pipeline:
        return
    from attest_cli.pipeline.loader import load_pipeline

    path = ctx.pipeline_path(request.pipeline)
    options.pipeline_label = ctx.display(path)
    if not path.is_file():
        options.pipeline_problem = (f"no pipeline file {ctx.display(path)} to compare with "
                                    "(run in the project, or pass --no-pipeline)")
        return
    pipeline = load_pipeline(path, doc=ctx.pipeline_doc(request.pipeline, required=True))
    options.pipeline_hash = pipeline_hash(pipeline)
    options.root = pipeline.root


def _settings(ctx: AppContext, request: VerifyRequest) -> Settings:
    try:
        doc = ctx.pipeline_doc(request.pipeline)
    except InputError:
        if request.check_pipeline:
            raise
        doc = None  # a broken attest.yaml does not matter when the pipeline is not checked
    return ctx.settings(pipeline_doc=doc)


class Recorder(Protocol):
    def close(self) -> None: ...


def observe(bus: EventBus, ctx: AppContext, settings: Settings) -> Recorder | None:
    """Let the run history record these verifications, when that feature is installed.

    The recorder buffers them; the caller closes it (in a ``finally``) to write them.
    """
    try:
        from attest_cli.metrics.history import attach_standalone
    except (ImportError, AttributeError):
        return None
    try:
        return attach_standalone(bus, ctx, settings)
    except Exception as exc:  # recording is an observer: it never stops a verification
        log.warning("verifications will not be recorded in the run history: %s", exc)
        return None


def verify_receipts(ctx: AppContext, request: VerifyRequest) -> list[VerificationResult]:
    """Verify every receipt the request names; InputError (exit 2) on unusable input.

    Each verification is published on a bus the run history buffers; the buffer is written
    in one transaction when verification ends, however it ends (an error, Ctrl-C, SIGTERM).
    """
    if not request.receipts:
        raise UsageError("name at least one receipt file (globs allowed)")
    settings = _settings(ctx, request)
    bus = EventBus()
    # SIGINT/SIGTERM stop between receipts; the buffered verifications are still written,
    # and a second signal before that write is a hard stop.
    with StopRequest(second_is_hard=True, check_on_exit=True) as signals:
        recorder = observe(bus, ctx, settings)
        try:
            return _verify(ctx, request, settings, bus, signals.check)
        finally:
            if recorder is not None:
                with signals.closing():
                    recorder.close()


def _verify(ctx: AppContext, request: VerifyRequest, settings: Settings, bus: EventBus,
            check: Callable[[], None]) -> list[VerificationResult]:
    paths = expand_receipts(ctx, request.receipts)
    options = VerifyOptions(root=ctx.workdir, check_signatures=request.check_signatures)
    if request.check_signatures:
        options.trusted, options.required_key = trusted_set(ctx, settings, request)
    if request.policy:
        options.policy = load_policy(ctx.path(request.policy),
                                     label=ctx.display(ctx.path(request.policy)))
    _pipeline_state(ctx, request, options)
    loaded: list[LoadedReceipt] = []
    for path in paths:
        check()
        t0 = time.perf_counter()
        try:
            loaded.append(load(path, label=ctx.display(path)))
        except InputError:
            bus.publish(VerificationFinished(kind="receipt", ok=False, reason=MALFORMED,
                                             duration=time.perf_counter() - t0))
            raise
    verifier = ReceiptVerifier(options, bus)
    results: list[VerificationResult] = []
    for item in loaded:
        check()
        r = verifier.verify(item)
        results.append(r)
        log.debug("receipt %s %s", r.path, "verified" if r.ok else "failed verification",
                  extra={"fields": {"receipt": r.path, "ok": r.ok, "reasons": r.reasons}})
    return results
