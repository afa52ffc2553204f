"""Push the run history's cumulative values to a Prometheus Pushgateway after a run.

The Pushgateway *replaces* a group's values on each push; it never adds them. Pushing
``executions_total 1`` from each one-shot run would make ``rate()`` meaningless, so attest
pushes the totals from the run history, in a group per pipeline and runner
(``job``/``pipeline``/``instance``), including the last-success and last-completion
timestamps. A push that fails is one warning; it never changes the run's exit code.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from attest_cli.config.layers import Settings
from attest_cli.logging.structured import fields

log = logging.getLogger("attest.metrics")

PUSH_TIMEOUT = 5.0  # seconds: the most a down Pushgateway may delay the end of a run


def grouping_key(settings: Settings, pipeline: str) -> dict[str, str]:
    """The group of a push: the pipeline and a stable runner identity (default: host)."""
    instance = str(settings["monitoring.prometheus.instance"]).strip() or socket.gethostname()
    return {"pipeline": pipeline, "instance": instance}


def push(settings: Settings, pipeline: str, registry: Any, *, timeout: float = PUSH_TIMEOUT
         ) -> bool:
    """PUT the registry to the configured gateway; False (and one warning) on failure."""
    from prometheus_client import push_to_gateway

    url = str(settings["monitoring.prometheus.pushgateway"]).strip()
    job = str(settings["monitoring.prometheus.job"]).strip() or "attest"
    group = grouping_key(settings, pipeline)
    try:
        push_to_gateway(url, job=job, registry=registry, grouping_key=group, timeout=timeout)
    except Exception as exc:  # refused, timeout, 4xx/5xx: the run's outcome stands
        log.warning("pushing metrics to %s failed: %s", url, exc,
                    extra=fields(pushgateway=url, job=job, **group))
        return False
    log.debug("pushed metrics to %s", url, extra=fields(pushgateway=url, job=job, **group))
    return True
