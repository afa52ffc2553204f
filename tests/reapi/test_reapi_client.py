"""The REAPI client foundation (:mod:`attest_cli.reapi`) against a real BuildGrid server."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from attest_cli import deadline
from attest_cli.reapi import action, capabilities, digests, merkle
from attest_cli.reapi.action_cache import ActionCache
from attest_cli.reapi.capabilities import Capabilities
from attest_cli.reapi.cas import Cas
from attest_cli.reapi.channel import BadEndpoint, Endpoint, Remote, parse_target
from attest_cli.reapi.errors import ReapiUnavailable, UnsafeResult
from attest_cli.reapi.protos import re_pb2
from tests.reapi.servers import BlackHole, ReapiServer, RecordingProxy

pytestmark = pytest.mark.integration


def remote(url: str, **kw: object) -> Remote:
    return Remote(Endpoint(url, instance="main", **kw))  # type: ignore[arg-type]


def test_capabilities_of_buildgrid_choose_sha256_and_its_batch_limit(
        buildgrid: ReapiServer) -> None:
    with remote(buildgrid.url) as r:
        caps = capabilities.fetch(r)
    assert caps.digest_function is digests.SHA256
    assert 0 < caps.max_batch_bytes <= capabilities.MAX_BATCH_BYTES
    assert caps.ac_update is True


def test_digest_function_is_blake3_only_when_the_server_lists_it() -> None:
    DF = re_pb2.DigestFunction
    def caps(*listed: int) -> re_pb2.ServerCapabilities:
        return re_pb2.ServerCapabilities(cache_capabilities=re_pb2.CacheCapabilities(
            digest_functions=list(listed), max_batch_total_size_bytes=0))
    assert capabilities.from_message(caps(DF.SHA256, DF.BLAKE3)).digest_function.name == "blake3"
    assert capabilities.from_message(caps(DF.SHA256)).digest_function.name == "sha256"
    assert capabilities.from_message(caps()).digest_function.name == "sha256"  # pre-v2.3
    assert capabilities.from_message(caps()).max_batch_bytes == capabilities.DEFAULT_BATCH_BYTES
    # what the names mean: BLAKE3 digests are what b3sum prints, SHA-256 as sha256sum
    from blake3 import blake3
    assert digests.BLAKE3.digest(b"abc").hash == blake3(b"abc").hexdigest()
    assert digests.SHA256.digest(b"abc").hash == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")


def test_cas_round_trip_batches_small_blobs_and_streams_big_ones(
        recording_proxy: RecordingProxy) -> None:
    with remote(recording_proxy.url) as r:
        caps = capabilities.fetch(r)
        small_limit = Capabilities(caps.digest_function, 64 * 1024, True, False)
        cas = Cas(r, small_limit)
        small, big = b"small blob", os.urandom(300 * 1024)  # big: above the 64 KiB batch
        items = [(cas.fn.digest(small), small), (cas.fn.digest(big), big)]
        assert cas.upload(items) == len(small) + len(big)
        assert {"BatchUpdateBlobs", "Write", "FindMissingBlobs"} <= recording_proxy.methods()
        recording_proxy.calls.clear()
        assert cas.upload(items) == 0  # FindMissingBlobs: nothing missing, nothing sent
        assert recording_proxy.methods() == {"FindMissingBlobs"}
        got = cas.read_many([d for d, _ in items], limit=1 << 20)
        assert got == {digests.key(d): data for d, data in items}
        assert {"BatchReadBlobs", "Read"} <= recording_proxy.methods()
        with pytest.raises(UnsafeResult, match="above the 1000-byte limit"):
            cas.read(items[1][0], limit=1000)  # refused before a byte is asked for


def test_a_blob_that_does_not_match_its_digest_is_refused(buildgrid: ReapiServer) -> None:
    with remote(buildgrid.url) as r:
        cas = Cas(r, capabilities.fetch(r))
        data = b"the real content"
        cas.upload([(cas.fn.digest(data), data)])
        claimed = re_pb2.Digest(hash=cas.fn.digest(data).hash, size_bytes=len(data) - 1)
        with pytest.raises((UnsafeResult, ReapiUnavailable)):
            cas.read(claimed, limit=1 << 20)


def test_input_root_is_canonical_sorted_and_keeps_the_executable_bit(tmp_path: Path) -> None:
    trees = []
    for name, order in (("a", ["z.txt", "d/x.sh", "b.txt"]), ("b", ["b.txt", "z.txt", "d/x.sh"])):
        root = tmp_path / name
        (root / "d").mkdir(parents=True)
        for rel in ("z.txt", "b.txt", "d/x.sh"):
            (root / rel).write_text(rel)
        os.chmod(root / "d" / "x.sh", 0o755)
        trees.append(merkle.build(root, order, digests.SHA256))
    assert trees[0].digest == trees[1].digest  # another checkout, another order: same tree
    top = re_pb2.Directory()
    top.ParseFromString(trees[0].directories[digests.key(trees[0].digest)][1])
    assert [f.name for f in top.files] == ["b.txt", "z.txt"]
    assert [d.name for d in top.directories] == ["d"]
    sub = re_pb2.Directory()
    sub.ParseFromString(trees[0].directories[digests.key(top.directories[0].digest)][1])
    assert [(f.name, f.is_executable) for f in sub.files] == [("x.sh", True)]
    assert [f.is_executable for f in top.files] == [False, False]


def test_action_and_command_are_canonical() -> None:
    spec = action.ActionSpec(run="make all", env={"Z": "1", "A": "2"},
                             output_paths=("out/b", "out/a", "out/a"),
                             platform={"OSFamily": "linux", "Arch": "x86_64"}, timeout=90,
                             salt=b"key")
    built = action.build(spec, digests.SHA256.digest(b""), digests.SHA256)
    cmd = built.command
    assert list(cmd.arguments) == ["/bin/sh", "-c", "make all"]
    assert [(e.name, e.value) for e in cmd.environment_variables] == [("A", "2"), ("Z", "1")]
    assert list(cmd.output_paths) == ["out/a", "out/b"]
    assert [p.name for p in built.action.platform.properties] == ["Arch", "OSFamily"]
    assert built.action.timeout.seconds == 90 and built.action.salt == b"key"
    assert built.action.command_digest == digests.SHA256.digest(cmd.SerializeToString(
        deterministic=True))
    assert action.output_paths(["out/", "dist/*.whl", "**/*.o", "a/b.txt"]) == (
        "", "a/b.txt", "dist", "out")


def test_action_cache_round_trip_and_a_miss_is_none(buildgrid: ReapiServer) -> None:
    with remote(buildgrid.url) as r:
        caps = capabilities.fetch(r)
        ac = ActionCache(r, caps.digest_function.value)
        key = caps.digest_function.digest(b"an action")
        assert ac.get(key) is None
        ac.update(key, re_pb2.ActionResult(exit_code=0, stdout_raw=b""))
        assert ac.get(key) is not None


def test_endpoint_forms() -> None:
    assert parse_target("grpc://127.0.0.1:8980") == ("grpc", "127.0.0.1:8980")
    assert parse_target("grpcs://remote.buildbuddy.io") == ("grpcs", "remote.buildbuddy.io:443")
    for bad in ("http://h:1", "grpc://h", "grpc://user:pw@h:1", "grpc://h:1/path"):
        with pytest.raises(BadEndpoint):
            parse_target(bad)


def test_header_values_are_sent_but_never_shown_in_errors(
        recording_proxy: RecordingProxy) -> None:
    token = "tok-3f9a8b7c"
    r = Remote(Endpoint(recording_proxy.url, instance=f"bad {token}",
                        headers={"x-buildbuddy-api-key": token}))
    with pytest.raises(ReapiUnavailable) as info:
        capabilities.fetch(r)  # BuildGrid echoes the (unknown) instance name back
    r.close()
    assert recording_proxy.metadata[-1]["x-buildbuddy-api-key"] == token
    assert token not in str(info.value) and "***" in str(info.value)


def test_a_hung_server_hits_the_total_deadline(black_hole: BlackHole) -> None:
    r = remote(f"grpc://127.0.0.1:{black_hole.port}", timeout=1.0)
    start = time.monotonic()
    with pytest.raises(ReapiUnavailable, match="within the 1s deadline"):
        capabilities.fetch(r)
    assert time.monotonic() - start < 5
    r.close()


def test_an_interrupt_cuts_a_call_short(black_hole: BlackHole) -> None:
    r = remote(f"grpc://127.0.0.1:{black_hole.port}", timeout=60.0)
    threading.Timer(0.3, deadline.note_signal).start()
    start = time.monotonic()
    with pytest.raises(ReapiUnavailable, match="interrupted"):
        capabilities.fetch(r)
    assert time.monotonic() - start < 2  # 0.3 s until the signal, then at most a poll
    r.close()
