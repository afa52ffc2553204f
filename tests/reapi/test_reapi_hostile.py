"""A hostile REAPI server: an ActionResult that would write outside the declared outputs,
into attest's state or beyond the workspace, or claims a huge blob, is refused - one
warning, a miss, the step runs - and nothing is written where it points."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from attest_cli.reapi import capabilities, results
from attest_cli.reapi.action_cache import ActionCache
from attest_cli.reapi.cas import Cas
from attest_cli.reapi.channel import Endpoint, Remote
from attest_cli.reapi.errors import UnsafeResult
from attest_cli.reapi.protos import re_pb2
from tests.cache.helpers import make_project, run, runs, statuses, with_section
from tests.reapi.servers import ReapiServer, RecordingProxy
from tests.support import attest

pytestmark = pytest.mark.integration


def _file(cas: Cas, path: str, data: bytes = b"pwned\n", size: int | None = None) -> Any:
    digest = cas.fn.digest(data)
    cas.upload([(digest, data)])
    if size is not None:
        digest = re_pb2.Digest(hash=digest.hash, size_bytes=size)
    return re_pb2.OutputFile(path=path, digest=digest)


def _tree_with(cas: Cas, name: str, size: int | None = None) -> Any:
    """An output directory ``out`` holding one file ``name`` (its size claim: ``size``)."""
    data = b"x"
    digest = cas.fn.digest(data)
    cas.upload([(digest, data)])
    if size is not None:
        digest = re_pb2.Digest(hash=digest.hash, size_bytes=size)
    tree = re_pb2.Tree(root=re_pb2.Directory(files=[re_pb2.FileNode(name=name, digest=digest)]))
    digest, raw = cas.fn.message_digest(tree)
    cas.upload([(digest, raw)])
    return re_pb2.OutputDirectory(path="out", tree_digest=digest)


HOSTILE = {
    "parent path": lambda cas: re_pb2.ActionResult(output_files=[_file(cas, "../escape.txt")]),
    "state dir": lambda cas: re_pb2.ActionResult(
        output_files=[_file(cas, ".attest/keys/private.key")]),
    "absolute path": lambda cas: re_pb2.ActionResult(
        output_files=[_file(cas, "/tmp/attest-reapi-abs.txt")]),
    # BuildGrid itself drops a result naming blobs it lacks: a lying proxy serves this one
    "huge size": lambda cas: re_pb2.ActionResult(
        output_files=[_file(cas, "out/a.txt", size=10**13)]),
    "link out": lambda cas: re_pb2.ActionResult(output_symlinks=[
        re_pb2.OutputSymlink(path="out/link.txt", target="../../../etc/passwd")]),
    "tree name": lambda cas: re_pb2.ActionResult(output_directories=[_tree_with(cas, "..")]),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_action_result_is_a_miss_with_one_warning(
        kind: str, project: Path, buildgrid: ReapiServer, recording_proxy: RecordingProxy
        ) -> None:
    make_project(project, with_section(
        f"cache: {{backend: reapi, endpoint: '{recording_proxy.url}', instance: main}}\n"))
    explained = json.loads(attest("cache", "explain", "gen", "-f", "json", cwd=project).stdout)
    hash_, size = explained["reapi_action"].split("/")
    with Remote(Endpoint(buildgrid.url, instance="main")) as remote:
        caps = capabilities.fetch(remote)
        result = HOSTILE[kind](Cas(remote, caps))
        if kind == "huge size":
            recording_proxy.answers["GetActionResult"] = result.SerializeToString()
        else:
            ActionCache(remote, caps.digest_function.value).update(
                re_pb2.Digest(hash=hash_, size_bytes=int(size)), result)
    proc, report = run(project)
    assert statuses(report)["gen"] == "success"  # a miss: the step ran
    assert runs(project, "gen") == 1
    warnings = [line for line in proc.stderr.splitlines()
                if "corrupt or unsafe" in line and "of step gen " in line]
    assert len(warnings) == 1, proc.stderr
    assert not (project.parent / "escape.txt").exists()
    assert not Path("/tmp/attest-reapi-abs.txt").exists()
    assert not (project / ".attest" / "keys" / "private.key").exists()
    assert (project / "out" / "a.txt").read_text() == "alpha\n"
    assert (project / "out" / "link.txt").readlink() == Path("a.txt")


@pytest.mark.parametrize(("result", "reason"), [
    (lambda cas: re_pb2.ActionResult(output_files=[_file(cas, "../x")]),
     "not a plain relative path"),
    (lambda cas: re_pb2.ActionResult(output_files=[_file(cas, ".attest/keys/k")]),
     "attest's state directory"),
    (lambda cas: re_pb2.ActionResult(output_files=[_file(cas, "/etc/x")]), "absolute path"),
    (lambda cas: re_pb2.ActionResult(output_files=[_file(cas, "big", size=10**13)]),
     "claims 10000000000000 bytes"),
    (lambda cas: re_pb2.ActionResult(output_files=[_file(cas, "a"), _file(cas, "a")]),
     "listed twice"),
    (lambda cas: re_pb2.ActionResult(output_directories=[_tree_with(cas, "a/b")]),
     "bad name"),
])
def test_each_breach_is_named(result: Any, reason: str, shared_buildgrid: ReapiServer) -> None:
    with Remote(Endpoint(shared_buildgrid.url, instance="main")) as remote:
        cas = Cas(remote, capabilities.fetch(remote))
        with pytest.raises(UnsafeResult, match=reason):
            results.plan(result(cas), cas, results.Limits(max_total_bytes=1 << 30))
