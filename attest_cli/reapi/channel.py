"""One gRPC channel to a REAPI server, and every call made on it, bounded.

* Endpoint forms: ``grpc://host:port`` (plain text) and ``grpcs://host[:port]`` (TLS; the
  system roots, or ``tls_ca`` - a PEM file - for a private CA). ``instance`` is the REAPI
  instance name put in every request; ``headers`` (auth tokens such as
  ``x-buildbuddy-api-key`` or ``authorization``) go as call metadata and are never shown:
  every error message has their values replaced by ``***`` and URLs redacted.
* Every call has one total deadline (gRPC's own deadline covers the whole call, streaming
  included, so a server trickling bytes cannot stretch it), a single attempt (the circuit
  breaker decides about retrying), and is cut short within :data:`POLL_SECONDS` when the run
  is interrupted: a watcher cancels the call, so Ctrl-C never waits on the network.
* A response larger than ``max_message_bytes`` is refused by gRPC itself before it is
  allocated (``grpc.max_receive_message_length``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc

from attest_cli import deadline
from attest_cli.reapi.errors import ReapiUnavailable
from attest_cli.redaction import MASK, redact_text, redact_url

POLL_SECONDS = 0.05  # how often a call in flight looks for an interrupt
DEFAULT_TIMEOUT = 30.0  # seconds: the total deadline of one call when none is configured
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # one gRPC message either way (bytes)
GRPCS_DEFAULT_PORT = 443
_SCHEMES = ("grpc", "grpcs")


class BadEndpoint(ValueError):
    """An endpoint URL attest cannot use (the config validator names the key)."""


@dataclass(frozen=True)
class Endpoint:
    """Where a REAPI server is and how to talk to it."""

    url: str  # grpc://host:port or grpcs://host[:port]
    instance: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    tls_ca: str | None = None  # PEM file of the CA that signed the server's certificate
    timeout: float = DEFAULT_TIMEOUT  # total seconds per call (0: no deadline)
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES

    @property
    def secure(self) -> bool:
        return self.url.startswith("grpcs://")

    @property
    def target(self) -> str:
        """``host:port`` as gRPC wants it."""
        return parse_target(self.url)[1]

    @property
    def shown(self) -> str:
        """The endpoint as messages show it (credentials in the URL redacted)."""
        return redact_url(self.url)


def parse_target(url: str) -> tuple[str, str]:
    """``(scheme, host:port)`` of ``url``; :class:`BadEndpoint` if it is not grpc(s)://."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BadEndpoint(f"{redact_url(url)!r} is not a valid URL: {exc}") from None
    if parts.scheme not in _SCHEMES or not parts.hostname:
        raise BadEndpoint(f"{redact_url(url)!r} is not a REAPI endpoint "
                          "(grpc://host:port or grpcs://host[:port])")
    if parts.path not in ("", "/") or parts.query or parts.username or parts.password:
        raise BadEndpoint(f"{redact_url(url)!r}: a REAPI endpoint has no path, query or "
                          "credentials (put tokens in headers)")
    if port is None:
        if parts.scheme == "grpc":
            raise BadEndpoint(f"{url!r} needs a port (grpc://host:port)")
        port = GRPCS_DEFAULT_PORT
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"  # IPv6 literal
    return parts.scheme, f"{host}:{port}"


class Remote:
    """A channel plus the metadata every call carries; :meth:`unary` and :meth:`stream`."""

    def __init__(self, endpoint: Endpoint, *,
                 interrupted: Callable[[], bool] | None = None) -> None:
        scheme, target = parse_target(endpoint.url)
        self.endpoint = endpoint
        self.instance = endpoint.instance
        self._interrupted = interrupted
        self._secrets = [v for v in (str(x).strip() for x in endpoint.headers.values()) if v]
        self.metadata = tuple((str(k).lower(), str(v)) for k, v in endpoint.headers.items())
        options = [
            ("grpc.max_receive_message_length", endpoint.max_message_bytes),
            ("grpc.max_send_message_length", endpoint.max_message_bytes),
            ("grpc.enable_retries", 0),  # one attempt: the circuit breaker decides
            ("grpc.primary_user_agent", "attest-reapi"),
        ]
        if scheme == "grpcs":
            roots = None
            if endpoint.tls_ca:
                try:
                    roots = Path(endpoint.tls_ca).read_bytes()
                except OSError as exc:
                    raise ReapiUnavailable(f"cannot read the TLS CA file {endpoint.tls_ca}: "
                                           f"{exc.strerror}") from None
            creds = grpc.ssl_channel_credentials(root_certificates=roots)
            self.channel = grpc.secure_channel(target, creds, options=options)
        else:
            self.channel = grpc.insecure_channel(target, options=options)

    # -- errors --------------------------------------------------------------------------
    def redact(self, text: str) -> str:
        """``text`` with every header value (tokens) masked and URL credentials redacted."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
            _, _, token = secret.partition(" ")
            if token.strip():
                text = text.replace(token.strip(), MASK)
        return redact_text(text)

    def error(self, what: str, exc: BaseException, seconds: float | None = None
              ) -> ReapiUnavailable:
        """A gRPC failure as one redacted line naming the server and the call."""
        if isinstance(exc, grpc.RpcError) and hasattr(exc, "code"):
            code = exc.code()
            detail = exc.details() if hasattr(exc, "details") else ""
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                total = self._timeout(seconds) or 0
                detail = f"no complete answer within the {total:g}s deadline"
            text = f"{code.name if code else 'UNKNOWN'}: {detail or ''}".rstrip(": ")
        else:
            text = str(exc) or type(exc).__name__
        return ReapiUnavailable(self.redact(f"REAPI {what} at {self.endpoint.shown}: {text}"))

    # -- calls ---------------------------------------------------------------------------
    def _timeout(self, seconds: float | None) -> float | None:
        total = self.endpoint.timeout if seconds is None else seconds
        return total if total and total > 0 else None

    def _watch(self, call: Any, what: str) -> threading.Event:
        """Cancel ``call`` as soon as the run is interrupted; the returned event says so."""
        start = deadline.signals_seen()
        cut = threading.Event()

        def interrupted() -> bool:
            return deadline.signals_seen() != start or bool(
                self._interrupted and self._interrupted())

        def watch() -> None:
            while call.is_active() if hasattr(call, "is_active") else not call.done():
                if interrupted():
                    cut.set()
                    call.cancel()
                    return
                threading.Event().wait(POLL_SECONDS)

        if interrupted():
            cut.set()
            call.cancel()
        else:
            threading.Thread(target=watch, name=f"attest-reapi-{what}", daemon=True).start()
        return cut

    def unary(self, method: Any, request: Any, what: str, *,
              seconds: float | None = None) -> Any:
        """``method(request)`` under the total deadline; :class:`ReapiUnavailable` on any
        failure (``NOT_FOUND`` included: callers that expect it use :meth:`unary_or_none`)."""
        return self._future(method, request, what, seconds, not_found=False)

    def unary_or_none(self, method: Any, request: Any, what: str, *,
                      seconds: float | None = None) -> Any:
        """Like :meth:`unary`, but ``None`` when the server answers ``NOT_FOUND``."""
        return self._future(method, request, what, seconds, not_found=True)

    def client_stream(self, method: Any, requests: Iterator[Any], what: str, *,
                      seconds: float | None = None) -> Any:
        """A client-streaming call (ByteStream Write) under one total deadline."""
        return self._future(method, requests, what, seconds, not_found=False)

    def _future(self, method: Any, request: Any, what: str, seconds: float | None,
                *, not_found: bool) -> Any:
        try:
            future = method.future(request, timeout=self._timeout(seconds),
                                   metadata=self.metadata)
        except grpc.RpcError as exc:
            raise self.error(what, exc) from None
        cut = self._watch(future, what)
        try:
            return future.result()
        except (grpc.RpcError, grpc.FutureCancelledError) as exc:
            if cut.is_set() or isinstance(exc, grpc.FutureCancelledError):
                raise ReapiUnavailable(f"REAPI {what}: given up, the run was "
                                       "interrupted") from None
            if not_found and exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise self.error(what, exc) from None

    def stream(self, method: Any, request: Any, what: str, *,
               seconds: float | None = None, max_messages: int | None = None
               ) -> Iterator[Any]:
        """The responses of a server-streaming call, under one total deadline for the whole
        stream; more than ``max_messages`` responses is refused (a misbehaving server)."""
        try:
            call = method(request, timeout=self._timeout(seconds), metadata=self.metadata)
        except grpc.RpcError as exc:
            raise self.error(what, exc) from None
        cut = self._watch(call, what)
        count = 0
        try:
            for response in call:
                count += 1
                if max_messages is not None and count > max_messages:
                    call.cancel()
                    raise ReapiUnavailable(self.redact(
                        f"REAPI {what} at {self.endpoint.shown}: more than {max_messages} "
                        "messages in one answer"))
                yield response
        except grpc.RpcError as exc:
            if cut.is_set():
                raise ReapiUnavailable(f"REAPI {what}: given up, the run was "
                                       "interrupted") from None
            raise self.error(what, exc, seconds) from None
        finally:
            if call.is_active():
                call.cancel()

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
