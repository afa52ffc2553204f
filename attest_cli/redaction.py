"""Redaction of credentials carried inside URLs, wherever attest prints or stores one.

A URL-valued setting (``cache.endpoint: redis://:PASSWORD@host``, a Pushgateway URL with
userinfo, an OTLP endpoint with ``?api_key=``, a presigned S3 URL) is a credential in
disguise. Two layers keep it out of every artefact:

* :func:`redact_url` / :func:`redact_text` rewrite a URL (or every URL found in a message)
  with its userinfo and its known credential query parameters replaced by ``***``. Print
  sites and the log formatter call them, so a URL is still shown, but never its secret.
* :func:`settings_credentials` lists the secret values themselves (passwords, tokens,
  header values), so the run's :class:`~attest_cli.engine.masking.SecretMasker` masks them
  in step output, reports, receipts, traces and history even where no URL shape survives.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

MASK = "***"

# Query (and fragment) parameters whose value is a credential, compared lower-cased.
CREDENTIAL_PARAMS = frozenset({
    "password", "passwd", "pwd", "pass", "secret", "client_secret",
    "token", "access_token", "refresh_token", "id_token", "auth_token", "private_token",
    "api_key", "apikey", "api-key", "key", "sig", "signature",
    "x-amz-signature", "x-amz-credential", "x-amz-security-token",
    "x-goog-signature", "x-goog-credential",
})

# Environment variables attest (or the OpenTelemetry SDK it configures) reads credentials from.
CREDENTIAL_ENV = ("ATTEST_REDIS_PASSWORD", "REDIS_PASSWORD")
HEADER_ENV = ("OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS")
URL_ENV = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")
_TRAILING = ".,;:!?)]}"


def _split(url: str) -> tuple[str, str, str, str, str]:
    """``scheme://``, userinfo, the rest of the authority and path, query, fragment.

    Hand-rolled rather than :func:`urllib.parse.urlsplit`: that one rejects bad ports and
    normalises, and a redactor must neither fail nor change what it does not hide.
    """
    head, sep, rest = url.partition("://")
    if not sep:
        head, rest = "", url
    else:
        head += sep
    rest, _, fragment = rest.partition("#") if "#" in rest else (rest, "", "")
    rest, _, query = rest.partition("?") if "?" in rest else (rest, "", "")
    authority_end = len(rest) if "/" not in rest else rest.index("/")
    at = rest.rfind("@", 0, authority_end)
    userinfo, rest = (rest[:at], rest[at + 1:]) if at >= 0 else ("", rest)
    return head, userinfo, rest, query, fragment


def _params(text: str) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for part in text.split("&"):
        name, sep, value = part.partition("=")
        out.append((name, value if sep else None))
    return out


def _is_credential(name: str) -> bool:
    return unquote(name).strip().lower() in CREDENTIAL_PARAMS


def _redact_params(text: str) -> str:
    return "&".join(name if value is None else
                    f"{name}={MASK if _is_credential(name) and value else value}"
                    for name, value in _params(text))


def redact_url(url: str) -> str:
    """``url`` with its userinfo and credential parameters shown as ``***``; else unchanged.

    ``redis://:pw@h:6379/0`` -> ``redis://***@h:6379/0``; ``http://h/?token=t&a=1`` ->
    ``http://h/?token=***&a=1``. A ``host:port`` without a scheme is handled too
    (``:pw@h:6379`` -> ``***@h:6379``), as ``cache.endpoint`` accepts that form.
    """
    if not url:
        return url
    head, userinfo, rest, query, fragment = _split(url)
    out = head + (f"{MASK}@" if userinfo else "") + rest
    if "?" in url.partition("#")[0]:
        out += "?" + _redact_params(query)
    if "#" in url:
        out += "#" + _redact_params(fragment)
    return out


def redact_text(text: str) -> str:
    """Every ``scheme://`` URL inside ``text`` (a log line, an error message) redacted."""
    if "://" not in text:
        return text

    def one(match: re.Match[str]) -> str:
        url = match.group(0)
        stripped = url.rstrip(_TRAILING)
        return redact_url(stripped) + url[len(stripped):]

    return _URL.sub(one, text)


def credentials_in(url: str) -> list[str]:
    """The secret values inside ``url``: its password (or a lone user name, which is how
    tokens travel: ``https://TOKEN@host``) and its credential parameters, raw and decoded."""
    if not isinstance(url, str) or not url:
        return []
    _, userinfo, _, query, fragment = _split(url)
    found: list[str] = []
    if userinfo:
        user, sep, password = userinfo.partition(":")
        found.append(password if sep else user)
    for part in (query, fragment):
        found += [value for name, value in _params(part) if value and _is_credential(name)]
    out: list[str] = []
    for value in found:
        for form in (value, unquote(value)):
            if form and form != MASK and form not in out:
                out.append(form)
    return out


def _header_values(headers: Mapping[str, Any]) -> list[str]:
    """Header values are credentials (``Authorization: Bearer T``): the value and its token."""
    out: list[str] = []
    for value in headers.values():
        text = str(value).strip()
        out.append(text)
        _, _, token = text.partition(" ")
        if token.strip():
            out.append(token.strip())
    return out


def settings_credentials(values: Mapping[str, Any], environ: Mapping[str, str]) -> list[str]:
    """Every credential the configuration and environment hand attest, for the masker.

    ``values`` are the effective settings (credentials inside any URL-shaped value, and the
    whole value of a key the schema marks secret); ``environ`` adds the Redis password
    variables, the OTLP header variables and credentials inside the OTLP endpoint variables.
    """
    from attest_cli.config.schema import KEYS

    secret = {name for name, key in KEYS.items() if key.secret}
    out: list[str] = []
    for key, value in values.items():
        if key in secret and isinstance(value, Mapping):
            out += _header_values(value)
        elif key in secret and isinstance(value, str | list):
            out += [value] if isinstance(value, str) else [str(v) for v in value]
        elif isinstance(value, str):
            out += credentials_in(value)
    out += [environ[name] for name in CREDENTIAL_ENV if environ.get(name)]
    for name in HEADER_ENV:
        if environ.get(name):  # tracing's parser, imported only when one is set (~1 ms)
            from attest_cli.tracing.config import parse_key_values

            out += _header_values(parse_key_values(environ[name]))
    for name in URL_ENV:
        out += credentials_in(environ.get(name, ""))
    return [v for v in dict.fromkeys(out) if v]
