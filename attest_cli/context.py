"""The invocation context handed from the CLI to core code (httpie's ``Environment`` idea).

It carries where we are, the environment and the streams, so tests build their own instead
of patching globals.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from attest_cli.config.layers import ConfigSources, Settings, load_settings
from attest_cli.yamlfile import LocatedYAML, load_yaml

DEFAULT_PIPELINE = "attest.yaml"


@dataclass
class AppContext:
    """Where attest runs, its environment and streams: what a command may touch."""

    workdir: Path = field(default_factory=Path.cwd)
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    config_file: Path | None = None
    verbose: int = 0
    quiet: bool = False
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)

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
