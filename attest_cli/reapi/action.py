"""A step as a REAPI Command and Action: what the Action Cache is keyed by and what
``Execute`` runs.

* Command: ``/bin/sh -c <run>`` (the shell a step runs in locally), the environment
  variables sorted by name, the output paths sorted and unique (the spec's canonical form,
  so the same step gives the same digest on every machine), the platform properties sorted.
* Action: the Command's digest, the input root's digest (:mod:`.merkle`), the timeout,
  ``do_not_cache`` and the platform again (v2.2 reads it from the Action).
* ``salt``: attest puts its own BLAKE3 cache key here. The Action Cache entry is then never
  looser than the local key, which also covers what the Action cannot see (ambient
  variables listed in ``cache_env``, upstream outputs, the key's version), and a changed
  key format can never alias an old entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from attest_cli.pathspec import is_glob
from attest_cli.reapi import digests
from attest_cli.reapi.protos import re_pb2

if TYPE_CHECKING:
    from attest_cli.pipeline.model import Pipeline, Step

SHELL = ("/bin/sh", "-c")


@dataclass(frozen=True)
class ActionSpec:
    """Everything about a step that its Action records."""

    run: str
    env: Mapping[str, str] = field(default_factory=dict)
    output_paths: tuple[str, ...] = ()
    platform: Mapping[str, str] = field(default_factory=dict)
    timeout: float | None = None
    do_not_cache: bool = False
    salt: bytes = b""
    working_directory: str = ""


@dataclass(frozen=True)
class BuiltAction:
    """An Action, its Command, their digests and the blobs to upload before using them."""

    action: Any
    action_digest: Any
    command: Any
    command_digest: Any
    blobs: tuple[tuple[Any, bytes], ...]  # (Digest, bytes) of the Action and the Command


def output_paths(patterns: Iterable[str]) -> tuple[str, ...]:
    """REAPI output paths for declared outputs: a literal as is, a glob as the directory
    before its first wildcard (the server returns that whole directory; attest then keeps
    only what the patterns cover). A wildcard at the top means the whole input root."""
    out: set[str] = set()
    for pattern in patterns:
        parts = [p for p in pattern.strip("/").split("/") if p not in ("", ".")]
        literal: list[str] = []
        for part in parts:
            if is_glob(part):
                break
            literal.append(part)
        out.add("/".join(literal))
    return tuple(sorted(out))


def spec_for_step(pipeline: Pipeline, step: Step, environ: Mapping[str, str], *,
                  salt: str = "", platform: Mapping[str, str] | None = None,
                  do_not_cache: bool = False) -> ActionSpec:
    """The ActionSpec of ``step``: its command, the variables its cache key covers (never a
    secret's value), its declared outputs, timeout and platform; ``salt`` is attest's key."""
    from attest_cli.cache.keys import key_env

    env = key_env(pipeline.env, step.env, step.cache_env, step.cache_exclude_env,
                  pipeline.secret_names, environ)
    # the step's own platform and do_not_cache (attest.yaml) unless the caller overrides
    return ActionSpec(run=step.run, env=env, output_paths=output_paths(step.outputs),
                      platform=dict(step.platform if platform is None else platform),
                      timeout=step.timeout, do_not_cache=do_not_cache or step.do_not_cache,
                      salt=salt.encode())


def _platform(properties: Mapping[str, str]) -> Any:
    return re_pb2.Platform(properties=[
        re_pb2.Platform.Property(name=str(k), value=str(v))
        for k, v in sorted(properties.items(), key=lambda kv: (str(kv[0]), str(kv[1])))])


def build_command(spec: ActionSpec) -> Any:
    return re_pb2.Command(
        arguments=[*SHELL, spec.run],
        environment_variables=[re_pb2.Command.EnvironmentVariable(name=k, value=v)
                               for k, v in sorted(spec.env.items())],
        output_paths=sorted(set(spec.output_paths)),
        platform=_platform(spec.platform),
        working_directory=spec.working_directory)


def build(spec: ActionSpec, input_root_digest: Any, fn: digests.DigestFunction) -> BuiltAction:
    """The Action of ``spec`` over the input root ``input_root_digest``."""
    command = build_command(spec)
    command_digest, command_bytes = fn.message_digest(command)
    action = re_pb2.Action(command_digest=command_digest, input_root_digest=input_root_digest,
                           do_not_cache=spec.do_not_cache, salt=spec.salt,
                           platform=_platform(spec.platform))
    if spec.timeout:
        action.timeout.FromNanoseconds(int(spec.timeout * 1e9))
    action_digest, action_bytes = fn.message_digest(action)
    return BuiltAction(action=action, action_digest=action_digest, command=command,
                       command_digest=command_digest,
                       blobs=((action_digest, action_bytes), (command_digest, command_bytes)))
