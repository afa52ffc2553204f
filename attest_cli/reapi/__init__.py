"""A client of the Remote Execution API v2 (REAPI): the shared cache and remote execution.

One module per job, all importing gRPC and the protobuf stubs, so nothing here is imported
unless a REAPI backend is configured (``attest --help`` never loads gRPC):

* :mod:`.protos` - the REAPI v2, ByteStream and google.rpc stubs (from the ``buildgrid``
  wheel; never hand-encoded).
* :mod:`.channel` - :class:`~.channel.Endpoint` and :class:`~.channel.Remote`: one gRPC
  channel, its metadata (instance, headers), a total deadline per call that Ctrl-C cuts short,
  bounded message sizes, errors as :class:`~.errors.ReapiUnavailable` with headers redacted.
* :mod:`.digests` - the digest function (SHA-256, or BLAKE3 when the server lists it).
* :mod:`.capabilities` - GetCapabilities: digest function and batch limit.
* :mod:`.cas` - FindMissingBlobs, BatchUpdate/BatchRead, ByteStream for large blobs.
* :mod:`.merkle` - the input root of a step (Directory protos) from its declared inputs.
* :mod:`.action` - Command and Action of a step (also what Execute sends).
* :mod:`.action_cache` - GetActionResult / UpdateActionResult.
* :mod:`.results` - an ActionResult's outputs into the workspace, through the cache's own
  restore-safety code (:mod:`attest_cli.cache.restore`).
* :mod:`.execution` - Execute / WaitExecution of one Action, bounded, cancelled on interrupt.
* :mod:`.executor` - remote execution: a StepRunner that runs steps on the server.
* :mod:`.runhook` - the ``remote_exec`` run feature (``--remote-exec``, ``execution.*``).
"""
