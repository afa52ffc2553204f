"""``attest run --metrics-file FILE``: the exposition for node_exporter's textfile collector.

The file holds the run history's cumulative values (like ``attest serve``), so counters
only grow from one run to the next, and it is replaced atomically: the collector never
reads half a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from attest_cli.atomic import write_atomic
from attest_cli.metrics.exposition import exposition


def write_textfile(path: Path, registry: Any) -> Path:
    return write_atomic(path, exposition(registry))
