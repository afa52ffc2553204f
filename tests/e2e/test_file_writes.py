"""Files attest writes: modes honour the umask (keys stay 0600), and an atomic write never
replaces a device, FIFO, directory or symlink (issue 12, items 14-15; docs/security.md)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support import attest

PIPELINE = 'version: "0.1"\nname: p\nsteps:\n  a:\n    run: touch ran\n'


@contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)  # inherited by the attest subprocess
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600)])
def test_written_files_honour_the_umask_and_private_keys_stay_0600(
        tmp_path: Path, mask: int, expected: int) -> None:
    with umask(mask):
        r = attest("init", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        (tmp_path / "attest.yaml").write_text(PIPELINE)
        r = attest("run", "--sign", "--output", "receipt.json", "--report", "report.json",
                   "--metrics-file", "metrics.prom", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        r = attest("monitoring", "dashboard", "--output", "dash.json", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    written = {name: mode(tmp_path / name) for name in
               ("attest.yaml", "receipt.json", "report.json", "metrics.prom", "dash.json")}
    assert written == dict.fromkeys(written, expected)
    keys = tmp_path / ".attest" / "keys"
    assert mode(keys / "private.key") == 0o600


def run_with_report(root: Path, target: str) -> tuple[int, str, str]:
    (root / "attest.yaml").write_text(PIPELINE)
    r = attest("run", "--no-cache", "-q", "--report", target, cwd=root, timeout=20)
    return r.returncode, r.stdout, r.stderr


def test_report_to_dev_stdout_streams_and_leaves_the_device(tmp_path: Path) -> None:
    code, out, err = run_with_report(tmp_path, "/dev/stdout")
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["status"] == "success"
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_report_to_dash_is_standard_output_not_a_file_named_dash(tmp_path: Path) -> None:
    code, out, err = run_with_report(tmp_path, "-")
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["status"] == "success"
    assert not (tmp_path / "-").exists()


def test_report_to_dev_null_writes_the_stream_and_keeps_the_device(tmp_path: Path) -> None:
    before = os.stat("/dev/null")
    code, _out, err = run_with_report(tmp_path, "/dev/null")
    after = os.stat("/dev/null")
    assert code == 0, err
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev
    assert after.st_ino == before.st_ino
    assert not list(Path("/dev").glob(".null.*.tmp"))


def test_report_onto_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    code, _out, err = run_with_report(tmp_path, "pipe")
    assert code == 2 and err.strip() == "attest: error: --report pipe: is a FIFO; refusing " \
        "to replace it", err
    assert stat.S_ISFIFO(os.lstat(tmp_path / "pipe").st_mode)
    assert not (tmp_path / "ran").exists()


def test_report_onto_a_symlink_is_refused_and_the_link_kept(tmp_path: Path) -> None:
    (tmp_path / "real.json").write_text("keep me")
    (tmp_path / "link.json").symlink_to("real.json")
    code, _out, err = run_with_report(tmp_path, "link.json")
    assert code == 2 and "link.json: is a symlink to a regular file" in err, err
    assert err.count("\n") == 1
    assert os.readlink(tmp_path / "link.json") == "real.json"
    assert (tmp_path / "real.json").read_text() == "keep me"
    assert not (tmp_path / "ran").exists()


def test_a_core_atomic_write_refuses_non_regular_targets(tmp_path: Path) -> None:
    from attest_cli.atomic import write_atomic
    from attest_cli.errors import InputError

    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dangling").symlink_to("nowhere")
    for name in ("fifo", "dir", "dangling"):
        with pytest.raises(InputError, match=name):
            write_atomic(tmp_path / name, "x")
    assert stat.S_ISFIFO(os.lstat(tmp_path / "fifo").st_mode)
    assert (tmp_path / "dir").is_dir() and (tmp_path / "dangling").is_symlink()
    write_atomic("/dev/null", "discarded")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
