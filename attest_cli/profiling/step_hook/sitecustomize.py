"""Record a memray capture of this Python process when attest asks (``--profile-steps``).

``attest run --profile memory --profile-steps`` puts this directory first on the steps'
``PYTHONPATH`` and names a directory in ``ATTEST_MEMRAY_STEP_DIR``; every Python
interpreter a step starts then imports this module at start-up (``site`` imports
``sitecustomize``) and, if it can import memray, records its allocations to
``<dir>/<step>.<pid>.memray`` until it exits. An interpreter without memray, or one
already tracked, runs untracked. The ``sitecustomize`` this one shadows (later on
``sys.path``) is still imported.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any


def _track() -> None:
    directory = os.environ.get("ATTEST_MEMRAY_STEP_DIR")
    if not directory:
        return
    try:
        import atexit

        import memray
    except ImportError:
        return
    step = os.environ.get("ATTEST_STEP", "step").replace(os.sep, "_")
    path = os.path.join(directory, f"{step}.{os.getpid()}.memray")

    def start(frame: Any, event: str, arg: Any) -> None:
        # memray drops, from every main-thread stack, as many outer frames as were on the
        # stack when tracking started; started here (site's import of this module) that
        # would hide the step's own frames. So it starts at the first call after start-up
        # completes, from this profile hook, with only the main module's frame below it.
        if event != "call" or frame.f_back is not None:
            return
        sys.setprofile(None)
        try:
            tracker = memray.Tracker(path, native_traces=os.environ.get(
                "ATTEST_MEMRAY_NATIVE") == "1", follow_fork=True)
            tracker.__enter__()
        except Exception:  # another tracker, an unwritable directory: run untracked
            return
        atexit.register(tracker.__exit__, None, None, None)

    sys.setprofile(start)


def _chain() -> None:
    """Import the ``sitecustomize`` that this module shadows, if there is one."""
    here = os.path.dirname(os.path.abspath(__file__))
    saved = list(sys.path)
    mine = sys.modules.pop("sitecustomize", None)
    try:
        sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
        with contextlib.suppress(ImportError):
            import sitecustomize  # noqa: F401
    finally:
        sys.path[:] = saved
        if mine is not None:
            sys.modules["sitecustomize"] = mine


_track()
_chain()
