"""Remote execution as a run feature (``attest.run_features`` entry point ``remote_exec``).

Off (imports nothing) unless ``attest run --remote-exec`` or ``execution.backend: reapi``.
Then it asks the server's capabilities once (under ``execution.timeout``): a server that
cannot be reached, or that does not execute, is one warning and the run goes on locally -
or, under ``execution.required``, the run stops before any step with exit 1. Otherwise the
run's steps go through :class:`~attest_cli.reapi.executor.RemoteStepRunner`.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from attest_cli.errors import AttestError, ConfigError, ExitCode
from attest_cli.runner.features import Feature

if TYPE_CHECKING:
    from attest_cli.config.layers import Settings
    from attest_cli.runner.features import RunContext

log = logging.getLogger("attest.remote")


class ExecutionUnavailable(AttestError):
    """``execution.required`` is on and the execution server cannot be used (exit 1)."""

    exit_code = ExitCode.FAILURE


def wanted(run: RunContext) -> bool:
    return run.options.remote_exec or run.settings["execution.backend"] == "reapi"


def endpoint(settings: Settings) -> Any:
    """The :class:`~attest_cli.reapi.channel.Endpoint` of ``execution.*`` (a bad value, or
    a missing ``reapi`` extra, is a configuration error naming the key)."""
    url = str(settings["execution.endpoint"]).strip()
    if not url:
        raise ConfigError("remote execution (--remote-exec or execution.backend: reapi) needs "
                          "execution.endpoint (grpc://host:port or grpcs://host[:port])")
    try:
        from attest_cli.reapi.channel import BadEndpoint, Endpoint, parse_target
    except ImportError as exc:
        raise ConfigError("remote execution needs the 'reapi' extra "
                          f"(pip install 'attest-cli[reapi]'): {exc}") from None
    except Exception as exc:  # ReapiUnavailable: the stubs are missing
        raise ConfigError(f"execution.backend: {exc}") from None
    try:
        parse_target(url)
    except BadEndpoint as exc:
        raise ConfigError(f"execution.endpoint: {exc}") from None
    return Endpoint(url, instance=str(settings["execution.instance"]),
                    headers=dict(settings["execution.headers"]),
                    tls_ca=str(settings["execution.tls_ca"]) or None,
                    timeout=float(settings["execution.timeout"]))


def attach(run: RunContext) -> None:
    if not wanted(run):
        return
    settings = run.settings
    where = endpoint(settings)
    from attest_cli.engine.step_runner import ProcessStepRunner
    from attest_cli.reapi import capabilities, results
    from attest_cli.reapi.channel import Remote
    from attest_cli.reapi.errors import ReapiUnavailable
    from attest_cli.reapi.executor import RemoteStepRunner, Waits

    required = bool(settings["execution.required"])
    remote: Remote | None = None
    terminated = threading.Event()  # every call on the channel gives up once it is set
    try:
        remote = Remote(where, interrupted=terminated.is_set)
        caps = capabilities.fetch(remote)
        if not caps.execution:
            raise ReapiUnavailable(f"{where.shown} does not execute actions (its capabilities "
                                   "list no enabled execution)")
    except ReapiUnavailable as exc:
        if remote is not None:
            remote.close()
        if required:
            raise ExecutionUnavailable(f"execution.required is true and remote execution is "
                                       f"unavailable: {exc}") from None
        log.warning("remote execution unavailable, running the steps locally: %s", exc)
        return
    runner = RemoteStepRunner(
        remote, caps, run.pipeline, ProcessStepRunner(), required=required,
        waits=Waits(queue_timeout=float(settings["execution.queue_timeout"]),
                    max_wait=float(settings["execution.max_wait"])),
        limits=results.Limits(max_total_bytes=int(settings["cache.max_entry_size"])),
        terminated=terminated)
    run.set_step_runner(runner)
    run.on_close(runner.close)


FEATURE = Feature("remote_exec", 150, attach)
