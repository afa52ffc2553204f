"""The configuration layers and their merge (SPEC §4), remembering each value's origin.

Lowest first: defaults < user file < sections of ``attest.yaml`` < project file
(``.attest/config.yaml``) < ``--config``/``ATTEST_CONFIG`` < environment < flags.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from attest_cli.atomic import write_atomic
from attest_cli.config.schema import ENV_ALIASES, KEYS, env_name, lookup, suggest
from attest_cli.errors import ConfigError, InputError
from attest_cli.record import Record
from attest_cli.yamlfile import LocatedYAML, load_yaml

PROJECT_FILE = Path(".attest") / "config.yaml"


def user_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/attest/config.yaml`` (``~/.config`` when unset)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".config")
    return Path(base) / "attest" / "config.yaml"


class Assignment(NamedTuple):  # not a frozen dataclass: ~0.8 ms less start-up
    """One layer setting one key: which layer (``pipeline``, ``project``, ``file``, ``env``,
    ``user``, ``flag``), where (a file, an environment variable), the line, the value."""

    layer: str
    source: str
    value: Any
    line: int | None = None


class Settings(Record):
    """The merged configuration: a typed value and an origin for every key.

    ``trail`` keeps every layer's assignment of a key, lowest first, so a value that a
    higher layer overrode can still be reported (:mod:`attest_cli.config.shadowing`).
    """

    values: dict[str, Any]
    origins: dict[str, str]
    trail: dict[str, list[Assignment]]

    def __init__(self, values: dict[str, Any] | None = None,
                 origins: dict[str, str] | None = None,
                 trail: dict[str, list[Assignment]] | None = None) -> None:
        self.values = {} if values is None else values
        self.origins = {} if origins is None else origins
        self.trail = {} if trail is None else trail

    def __getitem__(self, key: str) -> Any:
        lookup(key)
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def section(self, prefix: str) -> dict[str, Any]:
        """Values under ``prefix.`` with the prefix stripped."""
        p = prefix + "."
        return {k[len(p):]: v for k, v in self.values.items() if k.startswith(p)}

    def set(self, key: str, value: Any, origin: str) -> None:
        spec = lookup(key)
        try:
            coerced = spec.coerce(value)
        except ValueError as exc:
            raise ConfigError(f"{origin}: {key}: {exc}") from None
        self.assign(key, coerced, origin, source=origin)

    def assign(self, key: str, value: Any, origin: str, *, source: str,
               line: int | None = None) -> None:
        """Record an already coerced value from the layer named by ``origin``'s first word."""
        self.values[key] = value
        self.origins[key] = origin
        self.trail.setdefault(key, []).append(
            Assignment(origin.split(" ", 1)[0], source, value, line))


def defaults() -> Settings:
    s = Settings()
    for key, spec in KEYS.items():
        s.values[key] = spec.coerce(spec.default) if spec.default != "" else spec.default
        s.origins[key] = "default"
    return s


def flatten_sections(doc: LocatedYAML, data: Mapping[str, Any], *, prefix: tuple[str, ...] = (),
                     allowed_top: set[str] | None = None) -> dict[str, tuple[Any, int | None]]:
    """Turn nested sections into ``{dotted.key: (raw value, line)}``, rejecting unknown keys."""
    out: dict[str, tuple[Any, int | None]] = {}
    for raw_key, value in data.items():
        key = str(raw_key)
        path = (*prefix, key)
        dotted = ".".join(path)
        if not prefix and allowed_top is not None and key not in allowed_top:
            continue
        if dotted in KEYS:
            out[dotted] = (value, doc.line(*path))
            continue
        children = [k for k in KEYS if k.startswith(dotted + ".")]
        if children and isinstance(value, dict):
            out.update(flatten_sections(doc, value, prefix=path))
            continue
        if children:
            raise doc.error("expected a mapping of settings", *path)
        candidates = [k for k in KEYS if k.count(".") == dotted.count(".")]
        raise doc.error(f"unknown configuration key{suggest(dotted, candidates)}", *path)
    return out


def apply_file(settings: Settings, doc: LocatedYAML, origin: str,
               *, allowed_top: set[str] | None = None) -> None:
    """Apply one file's settings; ``origin`` is ``"<layer> <path>"``."""
    # the head: a kept parse of the pipeline file holds its steps back (yamlfile), and no
    # setting is under them
    data = doc.head
    if data is None:
        return
    if not isinstance(data, dict):
        raise InputError("expected a mapping of settings", path=doc.path, line=1)
    for key, (raw, line) in flatten_sections(doc, data, allowed_top=allowed_top).items():
        spec = KEYS[key]
        try:
            value = spec.coerce(raw)
        except ValueError as exc:
            raise InputError(str(exc), path=doc.path, line=line, key=key) from None
        settings.assign(key, value, origin, source=doc.path, line=line)


def apply_env(settings: Settings, environ: Mapping[str, str]) -> None:
    names = {env_name(k): k for k in KEYS}
    names.update(ENV_ALIASES)
    for var, key in names.items():
        if var in environ and environ[var] != "":
            try:
                value = KEYS[key].coerce(environ[var])
            except ValueError as exc:
                raise ConfigError(f"environment {var}: {exc}") from None
            settings.assign(key, value, f"env {var}", source=var)


class ConfigSources(Record):
    """Where each layer lives for one invocation (built once by the CLI, passed down)."""

    workdir: Path
    explicit: Path | None  # --config or ATTEST_CONFIG
    pipeline_doc: LocatedYAML | None
    environ: Mapping[str, str]
    flags: dict[str, Any]
    # where ``attest run`` keeps parses of unchanged files (attest_cli.yamlcache); None: parse
    kept_parses: Path | None

    def __init__(self, workdir: Path, explicit: Path | None = None,
                 pipeline_doc: LocatedYAML | None = None,
                 environ: Mapping[str, str] | None = None, flags: dict[str, Any] | None = None,
                 kept_parses: Path | None = None) -> None:
        self.workdir = workdir
        self.explicit = explicit
        self.pipeline_doc = pipeline_doc
        self.environ = dict(os.environ) if environ is None else environ
        self.flags = {} if flags is None else flags
        self.kept_parses = kept_parses

    def load(self, path: Path) -> LocatedYAML:
        if self.kept_parses is None:
            return load_yaml(path)
        from attest_cli.yamlcache import load_kept

        return load_kept(path, label=str(path), cache_dir=self.kept_parses)

    @property
    def project_file(self) -> Path:
        return self.workdir / PROJECT_FILE

    @property
    def user_file(self) -> Path:
        return user_config_path(self.environ)


# Sections of attest.yaml that configure attest rather than describe the pipeline.
PIPELINE_SECTIONS = {"cache", "monitoring", "tracing", "health", "signing", "history", "profiling",
                     "execution"}


def load_settings(sources: ConfigSources) -> Settings:
    """Merge every layer; errors name the file, line and key."""
    settings = defaults()
    if sources.user_file.is_file():
        apply_file(settings, sources.load(sources.user_file), f"user {sources.user_file}")
    if sources.pipeline_doc is not None and isinstance(sources.pipeline_doc.head, dict):
        apply_file(settings, sources.pipeline_doc, f"pipeline {sources.pipeline_doc.path}",
                   allowed_top=PIPELINE_SECTIONS)
    if sources.project_file.is_file():
        apply_file(settings, sources.load(sources.project_file),
                   f"project {sources.project_file}")
    explicit = sources.explicit
    if explicit is None and sources.environ.get("ATTEST_CONFIG"):
        explicit = Path(sources.environ["ATTEST_CONFIG"])
    if explicit is not None:
        apply_file(settings, sources.load(explicit), f"file {explicit}")
    apply_env(settings, sources.environ)
    for key, value in sources.flags.items():
        if value is not None:
            settings.set(key, value, "flag")
    return settings


def _read_plain(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    doc = load_yaml(path)
    if doc.data is None:
        return {}
    if not isinstance(doc.data, dict):
        raise InputError("expected a mapping of settings", path=str(path), line=1)
    return doc.data


def write_key(path: Path, key: str, value: Any | None, *, private: bool = False) -> Any:
    """Set (or with ``value=None`` remove) ``key`` in the nested YAML file at ``path``.

    The value is validated against the schema first, so a file is never left holding a
    value attest would later reject. ``private`` (a secret's file) writes it mode 0600.
    """
    spec = lookup(key)
    data = _read_plain(path)
    parts = key.split(".")
    node = data
    coerced = None
    if value is not None:
        try:
            coerced = spec.coerce(value)
        except ValueError as exc:
            raise ConfigError(f"{key}: {exc}") from None
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = coerced
    else:
        trail = []
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                raise ConfigError(f"{key} is not set in {path}")
            trail.append((node, part))
            node = child
        if parts[-1] not in node:
            raise ConfigError(f"{key} is not set in {path}")
        del node[parts[-1]]
        for parent, part in reversed(trail):
            if not parent[part]:
                del parent[part]
    import yaml  # only `attest config set/unset` writes YAML

    with contextlib.suppress(OSError):  # a private file stays so (it may hold a secret)
        private = private or path.stat().st_mode & 0o077 == 0
    # follow_symlinks: a config kept in a dotfiles repo stays linked
    write_atomic(path, yaml.safe_dump(data, sort_keys=False, default_flow_style=False),
                 follow_symlinks=True, mode=0o600 if private else None)
    return coerced
