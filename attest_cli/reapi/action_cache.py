"""The Action Cache: an Action's digest -> its ActionResult (outputs, logs, exit code).

Reads ask for inlined stdout/stderr (small logs come back in one round trip). A result is
untrusted like any remote object (:mod:`.results` checks it before anything is written).
"""

from __future__ import annotations

from typing import Any

from attest_cli.reapi.channel import Remote
from attest_cli.reapi.protos import re_grpc, re_pb2


class ActionCache:
    def __init__(self, remote: Remote, digest_function: int) -> None:
        self.remote = remote
        self.digest_function = digest_function
        self._stub = re_grpc.ActionCacheStub(remote.channel)

    def get(self, action_digest: Any) -> Any | None:
        """The ActionResult of ``action_digest``, or ``None`` when there is none."""
        request = re_pb2.GetActionResultRequest(
            instance_name=self.remote.instance, action_digest=action_digest,
            inline_stdout=True, inline_stderr=True, digest_function=self.digest_function)
        return self.remote.unary_or_none(self._stub.GetActionResult, request,
                                         "GetActionResult")

    def update(self, action_digest: Any, result: Any) -> Any:
        """Store ``result`` for ``action_digest`` (its blobs must already be in the CAS)."""
        request = re_pb2.UpdateActionResultRequest(
            instance_name=self.remote.instance, action_digest=action_digest,
            action_result=result, digest_function=self.digest_function)
        return self.remote.unary(self._stub.UpdateActionResult, request, "UpdateActionResult")
