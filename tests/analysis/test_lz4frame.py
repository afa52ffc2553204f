"""A memray capture cut anywhere is refused; a whole one is read (real memray captures)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from attest_cli.analysis.lz4frame import frame_is_complete
from tests.support import attest


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("memray") / "capture.bin"
    subprocess.run([sys.executable, "-m", "memray", "run", "-q", "-o", str(out), "-c",
                    "x = [bytearray(1000) for _ in range(5000)]"], check=True,
                   capture_output=True, timeout=120)
    data = out.read_bytes()
    assert data[:4] == b"\x04\x22\x4d\x18"  # memray compresses on exit: an LZ4 frame
    return data


def test_a_whole_frame_is_complete_and_every_cut_is_not(capture: bytes, tmp_path: Path) -> None:
    path = tmp_path / "c.bin"
    path.write_bytes(capture)
    with path.open("rb") as fh:
        assert frame_is_complete(fh)
    for n in range(1, 64):
        path.write_bytes(capture[: len(capture) * n // 64])
        with path.open("rb") as fh:
            assert not frame_is_complete(fh), n
    path.write_bytes(capture + b"\0")  # trailing bytes after the frame
    with path.open("rb") as fh:
        assert not frame_is_complete(fh)


def test_analyze_refuses_a_cut_capture_at_any_point(capture: bytes, tmp_path: Path) -> None:
    for n in (1, 2, 3):
        cut = tmp_path / f"cut{n}.prof"
        cut.write_bytes(capture[: len(capture) * n // 4])
        proc = attest("analyze", cut.name, "--format", "json", cwd=tmp_path)
        assert proc.returncode == 2, proc.stdout[:200]
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "truncated or corrupt memray capture" in lines[0], lines
