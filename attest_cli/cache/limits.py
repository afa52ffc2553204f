"""The cache's size and retention limits at the end of a run (``attest cache prune`` at most
once a day, or when a run stored something and the cache is over ``cache.max_size``).

Apart from :mod:`attest_cli.cache.maintenance`, which it imports only when a prune is due:
most runs end with one ``stat`` of the marker, and importing the upkeep module cost ~1 ms.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from attest_cli.atomic import write_atomic

if TYPE_CHECKING:
    from attest_cli.cache.backends.local import LocalBackend
    from attest_cli.cache.maintenance import PruneResult
    from attest_cli.config.layers import Settings


def enforce_limits(local: LocalBackend, settings: Settings, *, stored: bool,
                   every: float = 86400.0) -> PruneResult | None:
    """At the end of a run: the full prune (retention too) once a day; otherwise only when
    this run stored something and the cache is over ``cache.max_size``.

    A cache directory this process created (``local.created_here``) holds only what it
    wrote there (``local.written`` bytes): nothing in it can be past retention, and it is
    over the limit only if those bytes are. It counts as pruned now, without the walk and
    the read of every manifest that a prune is (half a second at the end of a 1,000-step
    cold build).

    Whether an existing cache is over the limit is answered by a ledger (``.size``): the
    bytes the last prune left plus what runs have stored since, instead of walking every
    object after every run that stores anything. It can only overstate (what ``cache
    clear`` or a repair deleted is not subtracted), which costs an early prune that sets
    it right; two runs storing at the same moment can understate it by one run's bytes
    until the next prune, a day at most."""
    limit = int(settings["cache.max_size"])
    marker = local.root / ".last-prune"  # dot-names are not cache objects
    ledger = local.root / ".size"
    try:
        due = time.time() - marker.stat().st_mtime > every
    except FileNotFoundError:
        due = True
    if local.created_here and local.written <= limit:
        local.root.mkdir(parents=True, exist_ok=True)
        _write_ledger(ledger, local.written)
        if due:
            marker.touch()
        return None
    if not due:
        if not stored:
            return None
        known = _read_ledger(ledger)
        size = known + local.written if known is not None else local.size()
        if size <= limit:
            _write_ledger(ledger, size)
            return None
    from attest_cli.cache.maintenance import prune

    result = prune(local, max_size=limit, retention_days=int(settings["cache.retention_days"]))
    local.root.mkdir(parents=True, exist_ok=True)
    marker.touch()
    _write_ledger(ledger, result.bytes_left)
    return result


def _read_ledger(path: Path) -> int | None:
    try:
        with path.open("rb") as fh:
            value = json.loads(fh.read(256))
    except (OSError, ValueError):
        return None
    bytes_ = value.get("bytes") if isinstance(value, dict) else None
    return bytes_ if isinstance(bytes_, int) and bytes_ >= 0 else None


def _write_ledger(path: Path, size: int) -> None:
    # an accelerator: without it, the next run that stores walks the cache
    with contextlib.suppress(OSError):
        write_atomic(path, json.dumps({"bytes": size}), sync=False)
