"""``--profile memory --profile-steps``: memray captures of the Python processes of each step.

``--profile memory`` records attest itself; a pipeline's memory is in its steps, which are
separate processes. With ``--profile-steps`` every step's environment gets
``step_hook/`` first on ``PYTHONPATH`` and a capture directory in
``ATTEST_MEMRAY_STEP_DIR``: each Python interpreter a step starts (and that can import
memray) records itself there as ``<step>.<pid>.memray`` (see ``step_hook/sitecustomize.py``).
After the run the directory becomes ``.attest/profiles/<run-id>.steps/`` and the captures
are listed in the profile's link file; each opens with ``memray stats`` and ``attest analyze``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from attest_cli.context import AppContext

HOOK_DIR = Path(__file__).with_name("step_hook")
ENV_DIR = "ATTEST_MEMRAY_STEP_DIR"
ENV_NATIVE = "ATTEST_MEMRAY_NATIVE"


def captures_dir(state_dir: Path, run_id: str) -> Path:
    return state_dir / "profiles" / f"{run_id}.steps"


class StepCaptures:
    """Set the steps' environment before the run; collect their captures after it."""

    def __init__(self, app: AppContext, *, native: bool) -> None:
        self.app = app
        profiles = app.state_dir / "profiles"
        profiles.mkdir(parents=True, exist_ok=True)
        self.staging = Path(tempfile.mkdtemp(prefix=".steps-", dir=profiles))
        self._saved = {k: app.environ.get(k) for k in ("PYTHONPATH", ENV_DIR, ENV_NATIVE)}
        path = app.environ.get("PYTHONPATH")
        app.environ["PYTHONPATH"] = os.pathsep.join([str(HOOK_DIR), *([path] if path else [])])
        app.environ[ENV_DIR] = str(self.staging)
        app.environ[ENV_NATIVE] = "1" if native else "0"

    def restore(self) -> None:
        for key, value in self._saved.items():
            if value is None:
                self.app.environ.pop(key, None)
            else:
                self.app.environ[key] = value

    def finish(self, run_id: str) -> dict[str, Any]:
        """Move the captures beside the run's other profiles; describe each one."""
        self.restore()
        files = sorted(self.staging.glob("*.memray"))
        if not files:
            self.discard()
            return {"directory": None, "captures": []}
        target = captures_dir(self.app.state_dir, run_id)
        os.replace(self.staging, target)
        return {"directory": str(target), "captures": [_describe(target / f.name)
                                                       for f in files]}

    def discard(self) -> None:
        self.restore()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.staging)


def _describe(path: Path) -> dict[str, Any]:
    step, pid, _ = path.name.rsplit(".", 2)
    entry: dict[str, Any] = {"step": step, "pid": int(pid), "file": str(path)}
    try:
        from memray import FileReader

        meta = FileReader(os.fspath(path)).metadata
        entry.update(peak_memory_bytes=int(meta.peak_memory),
                     allocations=int(meta.total_allocations),
                     command_line=meta.command_line)
    except Exception as exc:  # a step killed mid-write leaves a capture memray cannot read
        entry["error"] = " ".join(str(exc).split()) or type(exc).__name__
    return entry
