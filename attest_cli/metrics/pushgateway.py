"""Push the run history's cumulative values to a Prometheus Pushgateway after a run.

The Pushgateway *replaces* a group's values on each push; it never adds them. Pushing
``executions_total 1`` from each one-shot run would make ``rate()`` meaningless, so attest
pushes the totals from the run history, in a group per pipeline and runner
(``job``/``pipeline``/``instance``), including the last-success and last-completion
timestamps. A push that fails is one warning; it never changes the run's exit code.

The push has a *total* deadline (``monitoring.prometheus.push_timeout``, default 5 s) and a
signal ends it at once (:mod:`attest_cli.deadline`): a gateway that answers one byte at a
time cannot hold the end of a run.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from attest_cli import deadline
from attest_cli.config.layers import Settings
from attest_cli.logging.structured import fields

log = logging.getLogger("attest.metrics")



def grouping_key(settings: Settings, pipeline: str) -> dict[str, str]:
    """The group of a push: the pipeline and a stable runner identity (default: host)."""
    instance = str(settings["monitoring.prometheus.instance"]).strip() or socket.gethostname()
    return {"pipeline": pipeline, "instance": instance}


def split_credentials(url: str) -> tuple[str, dict[str, str]]:
    """``http://user:pass@host/`` -> (``http://host/``, a basic-auth header).

    Gateways behind basic auth are configured with the credentials in the URL; urllib would
    try to resolve ``user:pass@host`` as the host name, so they travel as a header instead
    (and never appear in the URL that errors and logs name)."""
    import base64
    from urllib.parse import unquote, urlsplit, urlunsplit

    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.username is None and parts.password is None:
        return url, {}
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port is not None else "")
    token = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    header = "Basic " + base64.b64encode(token.encode("utf-8")).decode("ascii")
    return urlunsplit(parts._replace(netloc=netloc)), {"Authorization": header}


def _deadline_handler(auth: dict[str, str]) -> Any:
    """prometheus_client's handler hook: the request itself, through the shared deadline."""
    def handler(url: str, method: str, timeout: float | None,
                headers: list[tuple[str, str]], data: bytes) -> Any:
        def handle() -> None:
            deadline.http_request(url, data=data, method=method,
                                  headers={**dict(headers), **auth},
                                  seconds=float(timeout or 0), what="Pushgateway push")
        return handle
    return handler


def push(settings: Settings, pipeline: str, registry: Any, *, timeout: float | None = None
         ) -> bool:
    """PUT the registry to the configured gateway; False (and one warning) on failure.

    ``timeout`` (default ``monitoring.prometheus.push_timeout``) bounds the whole push."""
    from prometheus_client import push_to_gateway

    if timeout is None:
        timeout = float(settings["monitoring.prometheus.push_timeout"])
    url, auth = split_credentials(str(settings["monitoring.prometheus.pushgateway"]).strip())
    job = str(settings["monitoring.prometheus.job"]).strip() or "attest"
    group = grouping_key(settings, pipeline)
    try:
        push_to_gateway(url, job=job, registry=registry, grouping_key=group, timeout=timeout,
                        handler=_deadline_handler(auth))
    except Exception as exc:  # refused, deadline, signal, 4xx/5xx: the run's outcome stands
        log.warning("pushing metrics to %s failed: %s", url, exc,
                    extra=fields(pushgateway=url, job=job, **group))
        return False
    log.debug("pushed metrics to %s", url, extra=fields(pushgateway=url, job=job, **group))
    return True
