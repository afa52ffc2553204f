"""Progress of ``attest benchmark``: a rich bar on terminals, one line per iteration
elsewhere (CI logs), nothing with ``--quiet``. Always on stderr."""

from __future__ import annotations

from typing import Any, TextIO


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


class BarProgress:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.bar: Any = None
        self.task: Any = None

    def start(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[last]}"),
                            console=Console(file=self.stream), transient=True)
        self.task = self.bar.add_task("benchmark", total=total, last="")
        self.bar.start()

    def advance(self, label: str, phase: str, index: int, count: int, seconds: float) -> None:
        self.bar.update(self.task, advance=1, description=f"{label}: {phase} {index}/{count}",
                        last=_seconds(seconds))

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


class LineProgress:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def start(self, total: int) -> None:
        pass

    def advance(self, label: str, phase: str, index: int, count: int, seconds: float) -> None:
        self.stream.write(f"benchmark {label}: {phase} {index}/{count}: {_seconds(seconds)}\n")
        self.stream.flush()

    def stop(self) -> None:
        pass


def choose(stream: TextIO, *, quiet: bool) -> Any:
    from attest_cli.bench.runner import QuietProgress

    if quiet:
        return QuietProgress()
    return BarProgress(stream) if stream.isatty() else LineProgress(stream)
