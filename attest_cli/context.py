"""The invocation context handed from the CLI to core code (httpie's ``Environment`` idea).

It carries where we are, the environment and the streams, so tests build their own instead
of patching globals.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, TextIO

from attest_cli.config.layers import ConfigSources, Settings, load_settings
from attest_cli.record import Record
from attest_cli.yamlfile import LocatedYAML, load_yaml

DEFAULT_PIPELINE = "attest.yaml"


class AppContext(Record):
    """Where attest runs, its environment and streams: what a command may touch."""

    workdir: Path
    environ: dict[str, str]
    config_file: Path | None
    verbose: int
    quiet: bool
    stdout: TextIO
    stderr: TextIO

    def __init__(self, workdir: Path | None = None, environ: dict[str, str] | None = None,
                 config_file: Path | None = None, verbose: int = 0, quiet: bool = False,
                 stdout: TextIO | None = None, stderr: TextIO | None = None) -> None:
        # the defaults are read when the context is made (tests swap the streams)
        self.workdir = Path.cwd() if workdir is None else workdir
        self.environ = dict(os.environ) if environ is None else environ
        self.config_file = config_file
        self.verbose = verbose
        self.quiet = quiet
        self.stdout = sys.stdout if stdout is None else stdout
        self.stderr = sys.stderr if stderr is None else stderr

    @property
    def state_dir(self) -> Path:
        """Where attest keeps runs, logs, cache, keys and history (``.attest/``)."""
        return self.workdir / ".attest"

    def path(self, value: str | Path) -> Path:
        """Resolve a user-given path against the working directory (``-C``)."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.workdir / p

    def pipeline_path(self, value: str | Path | None = None) -> Path:
        return self.path(value or DEFAULT_PIPELINE)

    def pipeline_doc(self, pipeline: str | Path | None = None, *, required: bool = False,
                     reuse_parse: bool = False) -> LocatedYAML | None:
        """The pipeline file, parsed; ``reuse_parse`` (what ``attest run`` asks for) answers
        from the parse kept under ``.attest/`` while the file's bytes are unchanged."""
        path = self.pipeline_path(pipeline)
        if not path.exists():
            if not required:
                return None
            from attest_cli.errors import InputError

            raise InputError("no such file (create one with 'attest init', or name one with -p)",
                             path=self.display(path))
        if reuse_parse:
            from attest_cli.yamlcache import load_kept

            return load_kept(path, label=self.display(path),
                                      cache_dir=self.state_dir / "parsed")
        return load_yaml(path, label=self.display(path))

    def display(self, path: Path) -> str:
        """A path as the user would type it (relative to the working dir when inside)."""
        try:
            return str(path.relative_to(self.workdir))
        except ValueError:
            return str(path)

    def settings(self, *, pipeline_doc: LocatedYAML | None = None,
                 flags: dict[str, Any] | None = None, reuse_parse: bool = False) -> Settings:
        """The merged settings; ``reuse_parse`` as for :meth:`pipeline_doc`."""
        sources = ConfigSources(workdir=self.workdir, explicit=self.config_file,
                                pipeline_doc=pipeline_doc, environ=self.environ,
                                flags=flags or {},
                                kept_parses=self.state_dir / "parsed" if reuse_parse else None)
        return load_settings(sources)

    def sources(self) -> ConfigSources:
        return ConfigSources(workdir=self.workdir, explicit=self.config_file,
                             environ=self.environ)
