"""Immutable description of a pipeline, as loaded from ``attest.yaml``."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from attest_cli.record import FrozenRecord


class Step(FrozenRecord):
    """One step: a shell command with its dependencies and cache declarations."""

    _uncompared: ClassVar[frozenset[str]] = frozenset({"location"})

    name: str
    run: str
    needs: tuple[str, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    env: dict[str, str]
    timeout: float | None
    cache: bool
    cache_env: tuple[str, ...]
    cache_exclude_env: tuple[str, ...]
    secrets: tuple[str, ...]
    # Remote execution (docs/remote.md): ``remote: false`` keeps the step on this machine;
    # ``platform`` is the REAPI Platform the worker must match; ``do_not_cache`` tells the
    # server neither to look the Action up nor to store its result.
    remote: bool
    platform: dict[str, str]
    do_not_cache: bool
    line: int | None
    # the key path of the step in its file (("steps", "build") or ("steps", "0")), to locate
    # errors found after loading
    location: tuple[str, ...]

    def __init__(self, name: str, run: str, needs: tuple[str, ...] = (),
                 inputs: tuple[str, ...] = (), outputs: tuple[str, ...] = (),
                 env: dict[str, str] | None = None, timeout: float | None = None,
                 cache: bool = True, cache_env: tuple[str, ...] = (),
                 cache_exclude_env: tuple[str, ...] = (), secrets: tuple[str, ...] = (),
                 remote: bool = True, platform: dict[str, str] | None = None,
                 do_not_cache: bool = False, line: int | None = None,
                 location: tuple[str, ...] = ()) -> None:
        self.__dict__.update(
            name=name, run=run, needs=needs, inputs=inputs, outputs=outputs,
            env={} if env is None else env, timeout=timeout, cache=cache,
            cache_env=cache_env, cache_exclude_env=cache_exclude_env, secrets=secrets,
            remote=remote, platform={} if platform is None else platform,
            do_not_cache=do_not_cache, line=line, location=location)

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


class Pipeline(FrozenRecord):
    """A loaded pipeline. ``root`` is the directory steps run in (the file's directory)."""

    _uncompared: ClassVar[frozenset[str]] = frozenset({"source_digest"})

    name: str
    path: Path
    root: Path
    steps: dict[str, Step]
    version: str
    env: dict[str, str]
    # BLAKE3 of the file's bytes when known: a step whose record was made from the same
    # bytes has the same definition (attest_cli.cache.fresh)
    source_digest: str | None

    def __init__(self, name: str, path: Path, root: Path, steps: dict[str, Step],
                 version: str = "0.1", env: dict[str, str] | None = None,
                 source_digest: str | None = None) -> None:
        self.__dict__.update(name=name, path=path, root=root, steps=steps, version=version,
                             env={} if env is None else env, source_digest=source_digest)

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
