"""Safe YAML loading that remembers where every value came from.

Every attest file (pipeline, config, policy, receipt) reports errors as ``file:line: key``.
PyYAML's node graph carries the marks, so we compose nodes with the *safe* loader and build
plain Python values ourselves, recording the line of each dotted key path. Building the
values ourselves also bounds alias expansion ("billion laughs") instead of trusting it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from attest_cli.errors import InputError

MAX_NODES = 1_000_000


@dataclass
class LocatedYAML:
    """Plain data plus the 1-based line of each key path (``("steps", "build", "run")``)."""

    path: str
    data: Any
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)

    def line(self, *keys: str) -> int | None:
        """The line of the deepest known prefix of ``keys`` (so errors always get a line)."""
        for end in range(len(keys), -1, -1):
            if keys[:end] in self.lines:
                return self.lines[keys[:end]]
        return None

    def error(self, message: str, *keys: str) -> InputError:
        """An :class:`InputError` located at ``keys`` in this file."""
        dotted = ".".join(keys) if keys else None
        return InputError(message, path=self.path, line=self.line(*keys), key=dotted)


def load_yaml(path: str | Path, *, max_bytes: int = 50 * 2**20, label: str | None = None,
              text: str | None = None) -> LocatedYAML:
    """Load ``path`` safely; any problem becomes one :class:`InputError` line."""
    name = label or str(path)
    if text is None:
        p = Path(path)
        try:
            size = p.stat().st_size
            if size > max_bytes:
                raise InputError(f"file is {size} bytes, larger than the {max_bytes} allowed",
                                 path=name)
            raw = p.read_bytes()
        except FileNotFoundError:
            raise InputError("no such file", path=name) from None
        except IsADirectoryError:
            raise InputError("is a directory, expected a YAML file", path=name) from None
        except PermissionError:
            raise InputError("permission denied", path=name) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"not UTF-8 text (byte {exc.start})", path=name) from None
    try:
        # libyaml's parser when PyYAML was built with it (about 10x faster); same safe nodes.
        node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise InputError(f"YAML syntax error: {problem}", path=name, line=line) from None
    except yaml.YAMLError as exc:
        raise InputError(f"YAML error: {exc}", path=name) from None
    located = LocatedYAML(path=name, data=None)
    if node is None:
        return located
    builder = _Builder(located)
    located.data = builder.build(node, ())
    return located


class _Builder:
    def __init__(self, located: LocatedYAML) -> None:
        self.located = located
        self.count = 0
        self.constructor = yaml.SafeLoader(stream="")

    def build(self, node: yaml.Node, path: tuple[str, ...]) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise InputError(f"document expands to more than {MAX_NODES} values "
                             "(alias bomb?)", path=self.located.path, line=node.start_mark.line + 1)
        self.located.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            self.constructor.flatten_mapping(node)
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.build(key_node, path)
                if isinstance(key, dict | list):
                    raise InputError("a mapping key must be a scalar", path=self.located.path,
                                     line=key_node.start_mark.line + 1)
                skey = str(key)
                if key in out:
                    raise InputError(f"duplicate key '{skey}'", path=self.located.path,
                                     line=key_node.start_mark.line + 1, key=".".join((*path, skey)))
                self.located.lines[(*path, skey)] = key_node.start_mark.line + 1
                out[key] = self.build(value_node, (*path, skey))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, (*path, str(i))) for i, child in enumerate(node.value)]
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise InputError(f"bad value: {exc}", path=self.located.path,
                             line=node.start_mark.line + 1) from None
