"""Immutable description of a pipeline, as loaded from ``attest.yaml``."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Step:
    """One step: a shell command with its dependencies and cache declarations."""

    name: str
    run: str
    needs: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None
    cache: bool = True
    cache_env: tuple[str, ...] = ()
    cache_exclude_env: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    # Remote execution (docs/remote.md): ``remote: false`` keeps the step on this machine;
    # ``platform`` is the REAPI Platform the worker must match; ``do_not_cache`` tells the
    # server neither to look the Action up nor to store its result.
    remote: bool = True
    platform: dict[str, str] = field(default_factory=dict)
    do_not_cache: bool = False
    line: int | None = None
    # the key path of the step in its file (("steps", "build") or ("steps", "0")), to locate
    # errors found after loading
    location: tuple[str, ...] = field(default=(), compare=False)

    def canonical(self) -> dict[str, Any]:
        """A JSON-ready, key-sorted form (used for hashing the pipeline definition).

        The remote-execution keys appear only when set, so the hash of every pipeline that
        does not use them (and every receipt signed over it) is unchanged."""
        extra: dict[str, Any] = {}
        if not self.remote:
            extra["remote"] = False
        if self.platform:
            extra["platform"] = dict(sorted(self.platform.items()))
        if self.do_not_cache:
            extra["do_not_cache"] = True
        return {**extra,
            "name": self.name, "run": self.run, "needs": sorted(self.needs),
            "inputs": list(self.inputs), "outputs": list(self.outputs),
            "env": dict(sorted(self.env.items())), "timeout": self.timeout, "cache": self.cache,
            "cache_env": sorted(self.cache_env),
            "cache_exclude_env": sorted(self.cache_exclude_env),
            "secrets": sorted(self.secrets),
        }


@dataclass(frozen=True)
class Pipeline:
    """A loaded pipeline. ``root`` is the directory steps run in (the file's directory)."""

    name: str
    path: Path
    root: Path
    steps: dict[str, Step]
    version: str = "0.1"
    env: dict[str, str] = field(default_factory=dict)
    # BLAKE3 of the file's bytes when known: a step whose record was made from the same
    # bytes has the same definition (attest_cli.cache.fresh)
    source_digest: str | None = field(default=None, compare=False)

    def canonical(self) -> dict[str, Any]:
        return {
            "version": self.version, "name": self.name, "env": dict(sorted(self.env.items())),
            "steps": [self.steps[n].canonical() for n in sorted(self.steps)],
        }

    @cached_property
    def secret_names(self) -> frozenset[str]:
        """Every step's ``secrets``, computed once: the cache asks for it on every step, and
        recomputing it there made a run quadratic in its number of steps (issue 14). The
        step table is not changed after loading."""
        return frozenset(name for step in self.steps.values() for name in step.secrets)
