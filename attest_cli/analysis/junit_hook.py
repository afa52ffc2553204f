"""``attest run --junit FILE`` (a ``run.FEATURES`` entry): write the run as JUnit XML.

The file is written when the run finishes, whatever its outcome (a failed or interrupted
run is exactly when CI needs the report), and, should the run end by an exception before
that, from the ``closers`` with whatever the report holds. A path that can never be
written (a directory) is a usage error before any step runs. Writing is atomic; a write
that fails is a warning: the report is an extra, it never changes the run's outcome.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from attest_cli.engine.events import Event, RunFinished
from attest_cli.errors import UsageError

if TYPE_CHECKING:
    from attest_cli.run import RunSetup

log = logging.getLogger("attest.pipeline")


def attach(setup: RunSetup) -> None:
    option = setup.options.junit
    if not option:
        return
    path = setup.ctx.path(option)
    if path.is_dir():
        raise UsageError(f"--junit {option}: is a directory; give a file name")
    writer = _JUnitWriter(setup, path)
    setup.bus.subscribe(writer)
    setup.closers.append(writer.close)


class _JUnitWriter:
    def __init__(self, setup: RunSetup, path: Path) -> None:
        self.setup = setup
        self.path = path
        self.written = False

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunFinished):
            self._write()

    def close(self) -> None:
        if not self.written:  # the run ended without RunFinished (an exception)
            self._write()

    def _write(self) -> None:
        from attest_cli.analysis.junit import write

        self.written = True
        try:
            write(self.setup.report, self.path, self.setup.masker)
        except OSError as exc:
            log.warning("could not write the JUnit report %s: %s", self.path, exc)
            return
        shown = self.setup.ctx.display(self.path)
        log.info("JUnit report written: %s", shown, extra={"fields": {"junit": shown}})
