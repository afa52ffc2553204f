"""The cache's size and retention limits at the end of a run (``attest cache prune`` at most
once a day, or when a run stored something and the cache is over ``cache.max_size``).

Apart from :mod:`attest_cli.cache.maintenance`, which it imports only when a prune is due:
most runs end with one ``stat`` of the marker, and importing the upkeep module cost ~1 ms.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

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
    cold build)."""
    limit = int(settings["cache.max_size"])
    marker = local.root / ".last-prune"  # dot-names are not cache objects
    try:
        due = time.time() - marker.stat().st_mtime > every
    except FileNotFoundError:
        due = True
    if local.created_here and local.written <= limit:
        if due:
            local.root.mkdir(parents=True, exist_ok=True)
            marker.touch()
        return None
    if not due and not (stored and local.size() > limit):
        return None
    from attest_cli.cache.maintenance import prune

    result = prune(local, max_size=limit, retention_days=int(settings["cache.retention_days"]))
    local.root.mkdir(parents=True, exist_ok=True)
    marker.touch()
    return result
