"""``attest run --junit FILE`` (run feature ``junit``): write the run as JUnit XML.

The file is written when the run finishes, whatever its outcome (a failed or interrupted
run is exactly when CI needs the report), and, should the run end by an exception before
that, when the run closes, with whatever the report holds. A path that can never be
written (a directory) is a usage error before any step runs. Writing is atomic; a write
that fails is a warning: the report is an extra, it never changes the run's outcome.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from attest_cli.engine.events import Event, RunFinished
from attest_cli.errors import UsageError
from attest_cli.runner.features import Feature

if TYPE_CHECKING:
    from attest_cli.engine.run_report import RunReport
    from attest_cli.runner.features import RunContext

log = logging.getLogger("attest.pipeline")


def attach(setup: RunContext) -> None:
    option = setup.options.junit
    if not option:
        return
    path = setup.ctx.path(option)
    if path.is_dir():
        raise UsageError(f"--junit {option}: is a directory; give a file name")
    writer = _JUnitWriter(setup, path)
    setup.subscribe(writer)
    setup.on_close(writer.close)


class _JUnitWriter:
    def __init__(self, setup: RunContext, path: Path) -> None:
        self.setup = setup
        self.path = path
        self.written = False

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunFinished):
            self._write(event.report)

    def close(self) -> None:
        if not self.written:  # the run ended without RunFinished (an exception)
            self._write(self.setup.report)

    def _write(self, report: RunReport) -> None:
        from attest_cli.render.junit import write

        self.written = True
        try:
            write(report, self.path, self.setup.masker)
        except OSError as exc:
            log.warning("could not write the JUnit report %s: %s", self.path, exc)
            return
        shown = self.setup.ctx.display(self.path)
        log.info("JUnit report written: %s", shown, extra={"fields": {"junit": shown}})


FEATURE = Feature("junit", 500, attach)
