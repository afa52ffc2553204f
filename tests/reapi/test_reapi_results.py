"""ActionResult -> workspace (:mod:`attest_cli.reapi.results`) with blobs in a real CAS."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from attest_cli.pathspec import covers
from attest_cli.reapi import capabilities, results
from attest_cli.reapi.cas import Cas
from attest_cli.reapi.channel import Endpoint, Remote
from attest_cli.reapi.errors import UnsafeResult
from attest_cli.reapi.protos import re_pb2
from tests.reapi.servers import ReapiServer

pytestmark = pytest.mark.integration
LIMITS = results.Limits(max_total_bytes=1 << 30)


@pytest.fixture
def cas(shared_buildgrid: ReapiServer) -> Any:
    with Remote(Endpoint(shared_buildgrid.url, instance="main")) as remote:
        yield Cas(remote, capabilities.fetch(remote))


def stored(cas: Cas, data: bytes) -> Any:
    digest = cas.fn.digest(data)
    cas.upload([(digest, data)])
    return digest


def tree(cas: Cas, files: dict[str, bytes]) -> Any:
    """An output directory's Tree (one level) holding ``files``; its digest."""
    nodes = [re_pb2.FileNode(name=n, digest=stored(cas, d)) for n, d in sorted(files.items())]
    digest, raw = cas.fn.message_digest(re_pb2.Tree(root=re_pb2.Directory(files=nodes)))
    cas.upload([(digest, raw)])
    return digest


def test_a_v21_server_listing_symlinks_twice_restores_each_once(cas: Cas, tmp_path: Path
                                                                ) -> None:
    link = re_pb2.OutputSymlink(path="out/l", target="f")
    result = re_pb2.ActionResult(
        output_files=[re_pb2.OutputFile(path="out/f", digest=stored(cas, b"data"))],
        output_symlinks=[link], output_file_symlinks=[link])  # as v2.1 servers send them
    files = results.restore(tmp_path, results.plan(result, cas, LIMITS), cas, LIMITS)
    assert [(f.path, f.kind) for f in files] == [("out/f", "file"), ("out/l", "symlink")]
    assert os.readlink(tmp_path / "out" / "l") == "f"
    assert (tmp_path / "out" / "l").read_bytes() == b"data"


def test_a_glob_output_directory_keeps_only_what_the_glob_covers(cas: Cas, tmp_path: Path
                                                                 ) -> None:
    result = re_pb2.ActionResult(output_directories=[re_pb2.OutputDirectory(
        path="dist", tree_digest=tree(cas, {"a.whl": b"wheel", "build.log": b"noise"}))])
    allowed = lambda p: covers(["dist/*.whl"], p)  # noqa: E731
    with pytest.raises(UnsafeResult, match=r"'dist/build\.log' is not among"):
        results.plan(result, cas, LIMITS, allowed)  # the cache: a stranger is hostile
    planned = results.plan(result, cas, LIMITS, allowed, drop_uncovered=True)
    files = results.restore(tmp_path, planned, cas, LIMITS)
    assert [f.path for f in files] == ["dist/a.whl"]
    assert (tmp_path / "dist" / "a.whl").read_bytes() == b"wheel"
    assert not (tmp_path / "dist" / "build.log").exists()


def test_an_uncovered_directory_is_never_created(cas: Cas, tmp_path: Path) -> None:
    result = re_pb2.ActionResult(output_directories=[re_pb2.OutputDirectory(
        path="elsewhere", tree_digest=tree(cas, {}))])
    planned = results.plan(result, cas, LIMITS, lambda p: covers(["out/"], p))
    workspace = tmp_path / "ws"
    workspace.mkdir()
    assert results.restore(workspace, planned, cas, LIMITS) == []
    assert list(workspace.iterdir()) == []


@pytest.mark.parametrize("path", ["/abs", "../up", ".attest/x", "a/../../b"])
def test_an_output_directory_path_must_be_plain(cas: Cas, path: str) -> None:
    result = re_pb2.ActionResult(output_directories=[re_pb2.OutputDirectory(
        path=path, tree_digest=tree(cas, {"f": b"x"}))])
    with pytest.raises(UnsafeResult):
        results.plan(result, cas, LIMITS, drop_uncovered=True)
