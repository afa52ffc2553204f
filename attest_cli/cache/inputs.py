"""A step's declared inputs as the key sees them: through symlinks, with empty directories.

The key must cover what the step can see. Inputs are therefore expanded following symlinks
(a link's target content, the files under a linked directory) and listing empty
directories; outputs are not (:func:`attest_cli.pathspec.expand` without ``follow_links``).
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from attest_cli.cache.keys import InputState
from attest_cli.cache.statindex import FileState, StatIndex
from attest_cli.pathspec import expand

log = logging.getLogger("attest.cache")

_warned: set[str] = set()
_lock = threading.Lock()


def input_paths(root: Path, patterns: Sequence[str]) -> list[str]:
    return expand(root, patterns, follow_links=True)


class InputWalk:
    """What :func:`input_states` saw besides the states, for the check after the step:
    when it began, the directories of the trees it listed (each with its ``stat`` from
    just before the listing; None for one it could not list), and whether every path
    found has a state (a FIFO, socket or device has none)."""

    __slots__ = ("began_ns", "complete", "dirs")

    def __init__(self) -> None:
        self.began_ns = 0
        self.dirs: dict[str, os.stat_result | None] = {}
        self.complete = False


def input_states(root: Path, patterns: Sequence[str], index: StatIndex,
                 walk: InputWalk | None = None) -> list[FileState]:
    """The inputs' states; the ``lstat`` that found a literal input serves the index too."""
    stats: dict[str, os.stat_result] = {}
    if walk is None:
        rels = expand(root, patterns, follow_links=True, stats=stats)
        return index.scan(root, rels, follow=True, stats=stats)
    walk.began_ns = time.time_ns()
    rels = expand(root, patterns, follow_links=True, stats=stats, dirs=walk.dirs)
    states = index.scan(root, rels, follow=True, stats=stats)
    walk.complete = len(states) == len(rels)
    return states


def is_special(root: Path, rel: str) -> bool:
    """Is ``rel`` a FIFO, socket or device now (what :meth:`StatIndex.scan` leaves out)?"""
    try:
        mode = os.lstat(os.path.join(root, rel)).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode))


def key_inputs(step: str, states: Sequence[FileState]) -> list[InputState]:
    """The key's view of ``states``; warns once per step about what it leaves out."""
    out = [InputState(s.path, s.kind, s.mode, s.digest, s.target_state) for s in states]
    _warn_excluded_modes(step, states)
    return out


def _warn_excluded_modes(step: str, states: Sequence[FileState]) -> None:
    """Group/other permission bits are not in the key (they follow the umask). Where they
    are clearly chosen - a file the owner can read but group or others cannot, such as a
    ``chmod 600`` credentials file - say so once, since changing them will not re-run."""
    private = [s.path for s in states if s.kind == "file" and s.mode & 0o400
               and (s.mode & 0o044) != 0o044]
    if not private:
        return
    with _lock:
        if step in _warned:
            return
        _warned.add(step)
    log.warning("step %s: input %s has mode %04o; group/other permission bits are not part "
                "of the cache key (only the owner's and the executable bit are), so changing "
                "them will not re-run the step%s", step, private[0],
                next(s.mode for s in states if s.path == private[0]),
                f" ({len(private) - 1} more such input(s))" if len(private) > 1 else "")
