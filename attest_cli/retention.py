"""Retention of run records: keep the newest ``history.keep_runs`` runs under ``.attest/``.

Every run leaves ``.attest/runs/<run-id>.json`` and, for the steps that printed something,
``.attest/logs/<run-id>/``. Without a bound they grow forever (38 runs of a 5,000-step
pipeline held 167 MB of reports). At the end of each run, the reports beyond the newest
``keep_runs`` are deleted with their log directories, and so are log directories older
than every kept run whose report is gone.

Never deleted: the run that is applying retention, and any run whose report still says
``running`` (another attest process at work, or a dead one not yet marked ``abandoned``;
:func:`attest_cli.runner.records.abandon_dead_runs` marks those, and a later run removes them).

Cost: two directory listings, bounded by ``keep_runs`` plus the runs started since the
last retention, then one small read (the first :data:`HEAD_BYTES` bytes of a report, where
its status is) and one deletion per removed run - never a parse of a whole report.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

log = logging.getLogger("attest.history")

# The run status is among the first fields of a report (written by RunReport.to_dict before
# the steps): a removal candidate is classified from this many bytes, never parsed whole.
HEAD_BYTES = 4096
_STATUS = re.compile(rb'[{,]\s*"status"\s*:\s*"([a-z]+)"')
_RUN_ID = re.compile(r"\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{6}")


def apply_retention(state_dir: Path, keep_runs: int, current: str) -> list[str]:
    """Delete the records of all but the newest ``keep_runs`` runs; returns the run ids
    removed. ``keep_runs`` 0 keeps everything. Never raises for a file it cannot remove."""
    if keep_runs <= 0:
        return []
    runs_dir, logs_dir = state_dir / "runs", state_dir / "logs"
    ids = sorted(_run_ids(runs_dir, ".json"), reverse=True)  # newest first
    removed: list[str] = []
    protected = {current}
    for run_id in ids[keep_runs:]:
        if run_id in protected:
            continue
        report = runs_dir / f"{run_id}.json"
        if _is_running(report):
            protected.add(run_id)
            continue
        try:
            report.unlink()
        except FileNotFoundError:
            pass  # another run's retention got there first
        except OSError as exc:
            log.warning("retention: could not delete %s: %s", report, exc)
            continue
        _remove_tree(logs_dir / run_id)
        removed.append(run_id)
    kept = ids[:keep_runs] + sorted(protected)
    oldest_kept = min(kept) if kept else current
    reports = set(ids)
    for run_id in _run_ids(logs_dir, ""):
        # logs of a run whose report is gone (deleted by hand, or never written), older than
        # every kept run: nothing refers to them any more
        if run_id < oldest_kept and run_id not in reports and run_id not in protected:
            _remove_tree(logs_dir / run_id)
    return removed


def _run_ids(directory: Path, suffix: str) -> list[str]:
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    out = []
    for name in names:
        if suffix and not name.endswith(suffix):
            continue
        stem = name[:-len(suffix)] if suffix else name
        if _RUN_ID.fullmatch(stem):
            out.append(stem)
    return out


def _is_running(report: Path) -> bool:
    """Whether a report says ``running`` (unreadable or unclassifiable: not running)."""
    try:
        with open(report, "rb") as fh:
            head = fh.read(HEAD_BYTES)
    except OSError:
        return False
    match = _STATUS.search(head)
    return match is not None and match.group(1) == b"running"


def _remove_tree(path: Path) -> None:
    try:
        if path.is_symlink():
            path.unlink()
        elif path.exists():  # most runs' steps print nothing: no log directory
            import shutil  # only when there is a tree to delete: ~2 ms of every run's end

            shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("retention: could not delete %s: %s", path, exc)
