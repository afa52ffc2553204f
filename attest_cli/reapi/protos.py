"""The REAPI v2 protobuf and gRPC stubs, from the ``buildgrid`` wheel (extra ``reapi``).

buildgrid ships stubs generated from the published ``remote-apis`` protos (Execution,
ActionCache, CAS, Capabilities) plus ByteStream and google.rpc; attest uses those rather
than generating or hand-encoding its own. Only stubs are imported (``buildgrid._protos``),
not BuildGrid's server code.
"""

from __future__ import annotations

from attest_cli.reapi.errors import ReapiUnavailable

try:
    from buildgrid._protos.build.bazel.remote.execution.v2 import (
        remote_execution_pb2 as re_pb2,
    )
    from buildgrid._protos.build.bazel.remote.execution.v2 import (
        remote_execution_pb2_grpc as re_grpc,
    )
    from buildgrid._protos.google.bytestream import bytestream_pb2 as bs_pb2
    from buildgrid._protos.google.bytestream import bytestream_pb2_grpc as bs_grpc
    from buildgrid._protos.google.longrunning import operations_pb2 as ops_pb2
    from buildgrid._protos.google.longrunning import operations_pb2_grpc as ops_grpc
    from buildgrid._protos.google.rpc import code_pb2
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ReapiUnavailable("the REAPI client needs the 'reapi' extra: "
                           "pip install 'attest-cli[reapi]'") from exc

__all__ = ["bs_grpc", "bs_pb2", "code_pb2", "ops_grpc", "ops_pb2", "re_grpc", "re_pb2"]
