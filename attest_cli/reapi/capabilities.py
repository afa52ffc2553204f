"""GetCapabilities: what the server speaks, asked once per channel.

Decides the digest function (:func:`.digests.choose`) and the largest batch request
(``max_batch_total_size_bytes``, 0 meaning "no limit" in the spec, where attest still keeps
its own :data:`DEFAULT_BATCH_BYTES` - under gRPC's 4 MiB default message size - as servers
without a limit still run behind proxies with one). Whether the Action Cache accepts
updates from this client (``action_cache_update_capabilities``) is kept too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from attest_cli.reapi import digests
from attest_cli.reapi.channel import Remote
from attest_cli.reapi.protos import re_grpc, re_pb2

DEFAULT_BATCH_BYTES = 4 * 1024 * 1024 - 64 * 1024  # bytes: one batch when the server says 0
MAX_BATCH_BYTES = 64 * 1024 * 1024  # bytes: never more in one batch, whatever it says


@dataclass(frozen=True)
class Capabilities:
    digest_function: digests.DigestFunction
    max_batch_bytes: int
    ac_update: bool  # the server lets clients write the Action Cache
    execution: bool  # the server executes actions (for remote execution)


def from_message(caps: Any) -> Capabilities:
    """Capabilities from a ``ServerCapabilities`` message (also usable on a fake one)."""
    cache = caps.cache_capabilities
    listed = list(cache.digest_functions)
    if caps.HasField("execution_capabilities"):
        ex = caps.execution_capabilities
        listed += [*ex.digest_functions, ex.digest_function]
    announced = int(cache.max_batch_total_size_bytes)
    batch = min(announced, MAX_BATCH_BYTES) if announced > 0 else DEFAULT_BATCH_BYTES
    ac_update = (not cache.HasField("action_cache_update_capabilities")
                 or bool(cache.action_cache_update_capabilities.update_enabled))
    execution = (caps.HasField("execution_capabilities")
                 and bool(caps.execution_capabilities.exec_enabled))
    return Capabilities(digest_function=digests.choose(listed), max_batch_bytes=batch,
                        ac_update=ac_update, execution=execution)


def fetch(remote: Remote) -> Capabilities:
    """Ask the server (one call, under the channel's deadline)."""
    stub = re_grpc.CapabilitiesStub(remote.channel)
    caps = remote.unary(stub.GetCapabilities,
                        re_pb2.GetCapabilitiesRequest(instance_name=remote.instance),
                        "GetCapabilities")
    return from_message(caps)
