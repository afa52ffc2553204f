"""Load a file for analysis: its kind, its parsed content and the run it is linked to."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attest_cli.analysis.detect import BENCHMARK, CPU, KINDS, MEMORY, RUN
from attest_cli.engine.run_report import RunReport
from attest_cli.errors import InputError
from attest_cli.profiling.link import ProfileLink, read_link


@dataclass
class Subject:
    """One file under analysis. ``data`` depends on ``kind``: a pyinstrument ``Session``,
    a memray ``FileReader``, a :class:`RunReport` or the benchmark JSON."""

    path: Path
    kind: str
    data: Any
    run: RunReport | None = None
    link: ProfileLink | None = None

    @property
    def describe(self) -> str:
        return KINDS[self.kind]


def load_subject(path: Path, kind: str, raw: Any) -> Subject:
    """Parse the file as ``kind`` (from :func:`detect`); a damaged file is an InputError."""
    if kind == CPU:
        subject = Subject(path, kind, _pyinstrument_session(path, raw))
    elif kind == MEMORY:
        subject = Subject(path, kind, _memray_reader(path))
    elif kind == RUN:
        report = RunReport.from_dict(raw, source=str(path))
        return Subject(path, kind, report, run=report)
    else:
        assert kind == BENCHMARK
        return Subject(path, kind, raw)
    subject.link = read_link(path)
    if subject.link is not None:
        subject.run = subject.link.report()
    return subject


def _pyinstrument_session(path: Path, raw: dict[str, Any]) -> Any:
    from pyinstrument.session import Session

    try:
        session = Session.from_json(raw)
        for stack, seconds in session.frame_records[:1]:
            if not isinstance(stack, list) or not isinstance(seconds, (int, float)):
                raise TypeError("frame_records")
        return session
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"malformed pyinstrument session (bad or missing {exc}); expected "
                         "what pyinstrument's Session.save writes", path=str(path)) from None


def _memray_reader(path: Path) -> Any:
    """A memray ``FileReader`` over a capture that reads to its end.

    A capture cut short can decode part-way: memray's reader then logs ``Memray ERROR: ...``
    to file descriptor 2 and stops, and its figures would silently describe only the part it
    read. So every record is read once here, with the process's stderr caught."""
    import tempfile

    from memray import FileReader

    from attest_cli.analysis.lz4frame import MAGIC, frame_is_complete

    with open(path, "rb") as fh:
        if fh.read(4) == MAGIC:
            fh.seek(0)
            if not frame_is_complete(fh):
                raise InputError("truncated or corrupt memray capture (its LZ4 frame ends "
                                 "before its end mark); expected a file written by memray "
                                 "(attest run --profile memory)", path=str(path))
    complaint = ""
    with tempfile.TemporaryFile() as caught:
        saved = os.dup(2)
        try:
            os.dup2(caught.fileno(), 2)
            reader = FileReader(os.fspath(path))
            reader.metadata  # noqa: B018 - reading the header validates the capture
            for _record in reader.get_allocation_records():
                pass
        except Exception as exc:  # memray raises OSError/IOError/ValueError for bad captures
            complaint = _one_line(exc)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        caught.seek(0)
        logged = [line for line in caught.read(4096).decode("utf-8", "replace").splitlines()
                  if "ERROR" in line]
    complaint = complaint or (" ".join(logged[0].split())[:200] if logged else "")
    if complaint:
        raise InputError(f"truncated or corrupt memray capture ({complaint}); expected "
                         "a file written by memray (attest run --profile memory)",
                         path=str(path))
    return reader


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]
