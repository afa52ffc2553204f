"""Safe YAML loading that remembers where every value came from, within a memory budget.

Every attest file (pipeline, config, policy, receipt) reports errors as ``file:line: key``.
We read libyaml's *event* stream and build plain Python values ourselves, recording the line
of each dotted key path. No node graph is ever held (composing a 51 MB document into PyYAML
nodes took more than 11 GB), and the build counts values and nesting as it goes, so a
document stops at :data:`MAX_NODES` values (aliases count once per use, which also bounds
"billion laughs") or :data:`MAX_DEPTH` levels, whichever comes first, with one located error.
Duplicate mapping keys are an error too: YAML says keys are unique, and a receipt with two
``status`` keys must not verify as whichever one the parser kept.
"""

from __future__ import annotations

import copy
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attest_cli.errors import InputError
from attest_cli.regularfile import read_regular

if TYPE_CHECKING:
    import yaml

MAX_NODES = 1_000_000  # values in one document, aliases expanded
MAX_DEPTH = 100  # nested mappings/sequences
MAX_BYTES = 50 * 2**20
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_RESOLVED_KEPT = 4096  # plain scalars whose resolved tag a build remembers (its memory bound)


class LocatedYAML:
    """Plain data plus the 1-based line of each key path (``("steps", "build", "run")``).

    A kept parse (attest_cli.yamlcache) may hold one top-level value and its lines back
    as marshal bytes (``deferred``): a cached run rebuilds its steps from ``prepared`` and
    never needs them, and unmarshalling them was a tenth of a 5,000-step no-op. ``head``
    is the top-level mapping without that value; ``data`` and ``lines`` bring it back.
    """

    def __init__(self, path: str, data: Any, lines: dict[tuple[str, ...], int] | None = None,
                 digest: str | None = None, prepared: Any = None, *,
                 deferred: tuple[str, bytes] | None = None) -> None:
        self.path = path
        self._data = data
        self._lines = {} if lines is None else lines
        self.digest = digest  # of the file's bytes, when the loader took one
        # what an earlier load built from the same bytes (attest_cli.yamlcache)
        self.prepared = prepared
        self._deferred = deferred

    @property
    def head(self) -> Any:
        """The data, without the deferred top-level value if there is one (no load)."""
        return self._data

    @property
    def data(self) -> Any:
        if self._deferred is not None:
            self._restore()
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        self._deferred = None
        self._data = value

    @property
    def lines(self) -> dict[tuple[str, ...], int]:
        if self._deferred is not None:
            self._restore()
        return self._lines

    @property
    def deferred(self) -> tuple[str, bytes] | None:
        """The held-back top-level key and the marshal bytes of (its value, its lines, the
        top-level keys in order)."""
        return self._deferred

    def _restore(self) -> None:
        import marshal

        assert self._deferred is not None
        key, blob = self._deferred
        self._deferred = None
        # the value, its lines and the order of the top-level keys (so the mapping is the
        # one the parser built), as yamlcache wrote them; checked like the rest of an entry
        try:
            value, lines, order = marshal.loads(blob)
            if not (type(lines) is dict and set(map(type, lines)) <= {tuple}
                    and set(map(type, lines.values())) <= {int} and type(order) is tuple
                    and set(order) == {*self._data, key}):
                raise ValueError("unexpected layout")
        except (EOFError, ValueError, TypeError) as exc:
            raise InputError(f"the kept parse of this file is damaged ({exc}); delete "
                             ".attest/parsed and run again", path=self.path) from None
        self._data = {k: value if k == key else self._data[k] for k in order}
        self._lines.update(lines)

    def line(self, *keys: str) -> int | None:
        """The line of the deepest known prefix of ``keys`` (so errors always get a line)."""
        if self._deferred is not None and keys and keys[0] == self._deferred[0]:
            self._restore()
        lines = self._lines
        for end in range(len(keys), -1, -1):
            if keys[:end] in lines:
                return lines[keys[:end]]
        return None

    def error(self, message: str, *keys: str) -> InputError:
        """An :class:`InputError` located at ``keys`` in this file."""
        dotted = ".".join(keys) if keys else None
        return InputError(message, path=self.path, line=self.line(*keys), key=dotted)


def load_yaml(path: str | Path, *, max_bytes: int = MAX_BYTES, label: str | None = None,
              text: str | None = None) -> LocatedYAML:
    """Load ``path`` safely; any problem becomes one :class:`InputError` line."""
    name = label or str(path)
    if text is None:
        raw = read_regular(path, max_bytes=max_bytes, label=name, expected="a YAML file")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"not UTF-8 text (byte {exc.start})", path=name) from None
        del raw
    _import_yaml()
    located = LocatedYAML(path=name, data=None)
    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster
    loader = loader_cls(text)
    try:
        located.data = _Builder(located, loader).run()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise InputError(f"YAML syntax error: {problem}", path=name, line=line) from None
    except yaml.YAMLError as exc:
        raise InputError(f"YAML error: {exc}", path=name) from None
    finally:
        loader.dispose()
    return located


def _import_yaml() -> None:
    """Bind ``yaml`` (~10 ms to import) on first use: a run answered from the pipeline's
    cached parse (:mod:`attest_cli.yamlcache`) with no config file parses no
    YAML, and ``attest --help`` none either."""
    global yaml
    import yaml as module

    yaml = module


class _Frame:
    """One open mapping or sequence while its events stream past."""

    __slots__ = ("anchor", "count", "key", "key_line", "merges", "path", "value")

    def __init__(self, value: dict[Any, Any] | list[Any], path: tuple[str, ...],
                 anchor: str | None, count: int) -> None:
        self.value = value
        self.path = path
        self.anchor = anchor
        self.count = count  # the value count when this container opened
        self.key: Any = None
        self.key_line = 0
        self.merges: list[tuple[Any, int]] = []
        # a pending key is marked by key_line > 0


class _Builder:
    """Builds values from the event stream; one instance per document."""

    def __init__(self, located: LocatedYAML, loader: Any) -> None:
        self.located = located
        self.loader = loader
        self.count = 0
        # event classes, looked up once: a ``A | B`` in isinstance builds a union per event
        self.ends = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
        self.starts = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
        self.ignored = {yaml.StreamStartEvent, yaml.StreamEndEvent, yaml.DocumentEndEvent}
        self.constructor = yaml.SafeLoader(stream="")
        self.anchors: dict[str, tuple[Any, int]] = {}  # value, values it holds
        self.stack: list[_Frame] = []
        self._lines = located.lines
        # (text, implicit) -> tag of the first plain scalars seen: keys repeat, once a step
        self.resolved: dict[tuple[str, Any], str] = {}

    def fail(self, message: str, line: int, key: tuple[str, ...] = ()) -> InputError:
        return InputError(message, path=self.located.path, line=line,
                          key=".".join(key) if key else None)

    def run(self) -> Any:
        result: Any = None
        documents = 0
        done = False
        # the loop and the plain scalar (~7 of 10 events) bind what they use: a 1,000-step
        # pipeline is ~13,000 events, and the builder's Python was 3/4 of its parse
        check_event, get_event = self.loader.check_event, self.loader.get_event
        document_start, ignored, scalar = yaml.DocumentStartEvent, self.ignored, yaml.ScalarEvent
        ends, starts = set(self.ends), set(self.starts)
        on_scalar, on_start, on_end, on_event = self.on_scalar, self.on_start, self.on_end, \
            self.event
        while check_event():
            event = get_event()
            kind = type(event)
            if kind is scalar:
                value, finished = on_scalar(event)
            elif kind in ends:
                value, finished = on_end(event.start_mark.line + 1)
            elif kind in starts:
                on_start(event, event.start_mark.line + 1)
                continue
            elif kind is document_start:
                documents += 1
                if documents > 1:
                    raise self.fail("expected a single document, found another", _line(event))
                continue
            elif kind in ignored:
                continue
            else:
                value, finished = on_event(event, _line(event))
            if finished:
                result = value
                done = True
        return result if done else None

    def on_scalar(self, event: Any) -> tuple[Any, bool]:
        """:meth:`event` for a scalar: the same steps, without the checks a scalar never
        needs (and the key path built only for a value, never for a key)."""
        line = event.start_mark.line + 1
        path = self._value_path(line)
        if path is not None:  # a value (a key's line is its path's: attach records it)
            self._lines.setdefault(path, line)
        tag = event.tag
        if tag is None or tag == "!":
            known = (event.value, event.implicit)
            tag = self.resolved.get(known)
            if tag is None:
                tag = self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)
                if len(self.resolved) < _RESOLVED_KEPT:
                    self.resolved[known] = tag
        if tag == _MERGE_TAG:
            return self.attach(None, line, merge=True)
        # most values are strings, and a string's constructor returns the text as it is
        value = event.value if tag == _STR_TAG else self.scalar(event, tag, line)
        if event.anchor is not None:
            self.anchors[event.anchor] = (value, 1)
        return self.attach(value, line)

    def _value_path(self, line: int) -> tuple[str, ...] | None:
        """Count one more value and give its key path; None if it is a mapping's key."""
        self.count += 1
        if self.count > MAX_NODES:
            self._tick(line, 0)
        stack = self.stack
        if not stack:
            return ()
        top = stack[-1]
        container = top.value
        if type(container) is list:
            return (*top.path, str(len(container)))
        if top.key_line:
            return (*top.path, _key_text(top.key))
        return None

    def _tick(self, line: int, amount: int = 1) -> None:
        self.count += amount
        if self.count > MAX_NODES:
            raise self.fail(f"document has more than {MAX_NODES} values (alias bomb or "
                            "oversized file?)", line)

    def _path(self) -> tuple[str, ...]:
        """The key path of the value about to be built."""
        if not self.stack:
            return ()
        top = self.stack[-1]
        if isinstance(top.value, list):
            return (*top.path, str(len(top.value)))
        return (*top.path, _key_text(top.key))

    def on_end(self, line: int) -> tuple[Any, bool]:
        """A mapping or sequence ends: its value goes where it belongs."""
        frame = self.stack.pop()
        value: Any = frame.value
        if frame.merges:
            _apply_merges(value, frame.merges)
        if frame.anchor is not None:
            self.anchors[frame.anchor] = (value, self.count - frame.count)
        return self.attach(value, line)

    def on_start(self, event: Any, line: int) -> None:
        """A mapping or sequence starts: a frame to build it in."""
        path = self._value_path(line)
        if path is None:
            raise self.fail("a mapping key must be a scalar", line)
        if len(self.stack) >= MAX_DEPTH:
            raise self.fail(f"nested more than {MAX_DEPTH} levels deep", line, path)
        self._lines.setdefault(path, line)
        self.stack.append(_Frame({} if type(event) is yaml.MappingStartEvent else [], path,
                                 event.anchor, self.count))

    def event(self, event: Any, line: int) -> tuple[Any, bool]:
        """Handle one node event; returns (the top value, True) when the document is built.
        (:meth:`run` sends scalars, starts and ends to their own handlers directly.)"""
        if isinstance(event, self.ends):
            return self.on_end(line)
        if isinstance(event, self.starts):
            self.on_start(event, line)
            return None, False
        if not isinstance(event, yaml.AliasEvent):
            return self.on_scalar(event)
        if event.anchor not in self.anchors:
            raise self.fail(f"unknown alias '*{event.anchor}'", line)
        value, size = self.anchors[event.anchor]
        self._tick(line, max(size, 1))
        self._lines.setdefault(self._path(), line)
        return self.attach(copy.deepcopy(value), line)

    def scalar(self, event: Any, tag: str, line: int) -> Any:
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        constructors = self.constructor.yaml_constructors
        build = constructors.get(tag, constructors.get(None))
        kind = tag.rsplit(":", 1)[-1]
        try:
            if build is None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"could not determine a constructor for the tag {_shown(tag)}",
                    event.start_mark)
            value = build(self.constructor, node)
        except yaml.MarkedYAMLError as exc:
            raise self.fail(f"bad value: {_bounded(str(exc.problem))}", line) from None
        except yaml.YAMLError as exc:
            raise self.fail(f"bad value: {_bounded(str(exc))}", line) from None
        except (ValueError, KeyError, TypeError, OverflowError, AttributeError,
                IndexError) as exc:
            # PyYAML's constructors trust the resolver's patterns: an explicit tag on text
            # that does not match (``!!int x``, ``!!bool maybe``, ``!!timestamp no``) fails in
            # int(), a dict lookup, a regex match's groupdict(); a valid int may be longer
            # than Python converts (sys.get_int_max_str_digits)
            why = (f" (more than {sys.get_int_max_str_digits()} digits)"
                   if kind == "int" and "limit" in str(exc) else "")
            raise self.fail(f"bad value: {_shown(event.value)} cannot be read as {kind}{why}",
                            line) from None
        if isinstance(value, types.GeneratorType):
            # a collection's tag on a scalar (``!!map x``): its constructor is a generator,
            # which fails only when run, so it would have become the value itself
            value.close()
            raise self.fail(f"bad value: {_shown(event.value)} is a scalar, and !!{kind} tags a "
                            "collection", line)
        return value

    def attach(self, value: Any, line: int, *, merge: bool = False) -> tuple[Any, bool]:
        """Put a finished value into the open container (or finish the document)."""
        if not self.stack:
            return value, True
        top = self.stack[-1]
        container = top.value
        if type(container) is list:
            container.append(value)
            return None, False
        if not top.key_line:  # this value is a key
            if isinstance(value, dict | list):
                raise self.fail("a mapping key must be a scalar", line)
            top.key = _MergeKey if merge else value
            top.key_line = line
            if not merge:
                skey = value if type(value) is str else _key_text(value)
                if value in container:
                    raise self.fail(f"duplicate key '{skey}'", line, (*top.path, skey))
                self._lines[(*top.path, skey)] = line
            return None, False
        if top.key is _MergeKey:
            sources = value if isinstance(value, list) else [value]
            for source in sources:
                if not isinstance(source, dict):
                    raise self.fail("a merge key '<<' needs a mapping or a list of mappings",
                                    top.key_line)
            top.merges.extend((source, top.key_line) for source in sources)
        else:
            top.value[top.key] = value
        top.key = None
        top.key_line = 0
        return None, False


def _shown(text: str, limit: int = 40) -> str:
    """``text`` quoted for an error line, cut at ``limit`` characters (a file may hold a
    50 MB scalar)."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def _bounded(message: str, limit: int = 200) -> str:
    """A message from PyYAML, which may quote the value, cut at ``limit`` characters."""
    return message if len(message) <= limit else message[:limit] + "..."


def _line(event: Any) -> int:
    return event.start_mark.line + 1 if event.start_mark is not None else 0


class _MergeKey:
    """Marks that the pending key is YAML's merge key ``<<``."""


def _key_text(key: Any) -> str:
    return "<<" if key is _MergeKey else str(key)


def _apply_merges(mapping: dict[Any, Any], merges: list[tuple[Any, int]]) -> None:
    """YAML merge keys, in PyYAML's order: merged keys first, explicit keys win, earlier
    merged mappings win over later ones."""
    if not merges:
        return
    merged: dict[Any, Any] = {}
    for source, _line in merges:
        for key, value in source.items():
            merged.setdefault(key, value)
    merged.update(mapping)
    mapping.clear()
    mapping.update(merged)
