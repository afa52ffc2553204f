"""The REAPI cache backend's own interface, against a real server: what it does with a step
whose inputs cannot make an input root, and its read-only refusal (no call at all)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from attest_cli.cache.backends.reapi import ReapiBackend
from attest_cli.reapi import digests, merkle
from attest_cli.reapi.action import ActionSpec
from attest_cli.reapi.channel import Endpoint
from tests.reapi.servers import ReapiServer, RecordingProxy

pytestmark = pytest.mark.integration

SPEC = ActionSpec(run="true", output_paths=("o",), salt=b"k")


def test_a_special_file_among_inputs_is_no_input_root(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(merkle.InputError, match="neither a file nor a directory"):
        merkle.build(tmp_path, ["pipe"], digests.SHA256)


def test_a_step_without_an_input_root_is_a_miss_and_not_stored(
        tmp_path: Path, shared_buildgrid: ReapiServer, caplog: pytest.LogCaptureFixture
        ) -> None:
    os.mkfifo(tmp_path / "pipe")
    backend = ReapiBackend(Endpoint(shared_buildgrid.url, instance="main"))
    try:
        assert backend.lookup(tmp_path, SPEC, ["pipe"], allowed=lambda p: True,
                              sink=lambda d, b: None) is None
        with caplog.at_level(logging.WARNING, logger="attest.cache"):
            assert backend.store(tmp_path, SPEC, ["pipe"], [], {}, b"", exit_code=0,
                                 started=0.0, finished=1.0) == 0
        assert "not stored in the REAPI cache" in caplog.text
        present, action = backend.contains_step(tmp_path, SPEC, ["pipe"])
        assert present is False and "neither a file nor a directory" in action
    finally:
        backend.close()


def test_read_only_store_sends_nothing(tmp_path: Path, recording_proxy: RecordingProxy
                                       ) -> None:
    (tmp_path / "o").write_text("out")
    backend = ReapiBackend(Endpoint(recording_proxy.url, instance="main"), read_only=True)
    try:
        assert backend.store(tmp_path, SPEC, [], [], {}, b"log", exit_code=0, started=0.0,
                             finished=1.0) == 0
    finally:
        backend.close()
    assert recording_proxy.calls == []
