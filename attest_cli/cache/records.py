"""The last-entry record of every step of a pipeline, in one file per pipeline.

A step's record (its latest key and that key's components) explains a later miss ("input
src/a.c changed") and feeds ``attest cache explain``. It used to be one file per step,
written on every store: a file creation per stored step, about a third of a cold build's
cache writes. The records of a pipeline now live in one JSON map (step name -> record),
read at most once per run (on the first miss or explanation that needs it) and written
once when the run's cache closes: the map as read again then, with this run's records on
top, so a concurrent run of the same pipeline loses at most the records it wrote in the
same instant (records only explain; losing one costs a less precise miss reason).

Bounded like everything attest reads from its cache directory: a map above
:data:`MAX_RECORDS_BYTES`, or one that does not parse, is ignored (and replaced on save).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from attest_cli.atomic import write_object
from attest_cli.compactjson import dumps, loads

log = logging.getLogger("attest.cache")

MAX_RECORDS_BYTES = 256 * 2**20


class StepRecords:
    """One pipeline's records; thread-safe (workers store while others look up)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._read: dict[str, Any] | None = None
        self._changed: dict[str, dict[str, Any]] = {}

    def _load(self) -> dict[str, Any]:
        try:
            with self.path.open("rb") as fh:
                raw = fh.read(MAX_RECORDS_BYTES + 1)
            if len(raw) > MAX_RECORDS_BYTES:
                return {}
            data = loads(raw)
        except (OSError, ValueError, RecursionError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, step: str) -> dict[str, Any] | None:
        """The step's record, or None (never recorded, or not a well-formed record)."""
        with self._lock:
            record = self._changed.get(step)
            if record is None:
                if self._read is None:
                    self._read = self._load()
                record = self._read.get(step)
        if not isinstance(record, dict) or not isinstance(record.get("components"), dict):
            return None
        return record

    def key(self, step: str) -> str | None:
        record = self.get(step)
        return record.get("key") if record is not None else None

    def put(self, step: str, record: dict[str, Any]) -> None:
        with self._lock:
            self._changed[step] = record

    def save(self) -> bool:
        """Write this run's records over the file's current ones (one write, no fsync);
        True if it wrote."""
        with self._lock:
            if not self._changed:
                return False
            merged = self._load()
            merged.update(self._changed)
            self._changed = {}
            self._read = merged
        try:
            write_object(str(self.path), dumps(merged))
        except OSError as exc:
            log.debug("could not save the steps' last-entry records: %s", exc)
            return False
        return True
