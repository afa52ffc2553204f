"""The renderer interface and the registry each result type keeps of its renderers.

A result is data (a run report, a verification, a benchmark result ...); a renderer turns
one into text for a format (pyinstrument's ``renderers/``, hyperfine's ``export/``). Each
result type has one :class:`Registry` keyed by format name; built-ins are named as
``"module:attribute"`` and imported on first use, so that looking a renderer up costs only
the module of the format asked for, and third-party renderers (entry points) are added to
the same registry the built-ins live in.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from attest_cli.errors import NotAvailableError, UsageError

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)


class Renderer(Protocol[T_contra]):
    """Turns one value into the text (or bytes) of one format."""

    @property
    def format(self) -> str: ...

    @property
    def extension(self) -> str: ...

    def render(self, value: T_contra) -> str: ...


@dataclass(frozen=True)
class FunctionRenderer(Generic[T]):
    """A renderer made of a plain function: how built-ins and plug-ins are usually written."""

    format: str
    extension: str
    func: Callable[[T], str]

    def render(self, value: T) -> str:
        return self.func(value)


# Options (a metric, colour, a width) are given to a renderer when it is made, as
# pyinstrument's renderers take theirs: a factory takes them as keywords.
Factory = Callable[..., Renderer[T]]

EXTENSIONS = {"text": "txt", "table": "txt", "json": "json", "html": "html", "markdown": "md",
              "chrome-trace": "json", "speedscope": "json", "junit": "xml"}


def extension_of(fmt: str) -> str:
    """The file extension a format is written with by default (``txt`` when unknown)."""
    return EXTENSIONS.get(fmt, "txt")


def _as_factory(fmt: str, target: Any) -> Factory[Any]:
    """A class (or factory) is used as is; a plain function becomes a FunctionRenderer."""
    if isinstance(target, type):
        return target
    func = target

    def factory(**_options: Any) -> Renderer[Any]:
        return FunctionRenderer(fmt, extension_of(fmt), func)

    return factory


class Registry(Generic[T]):
    """The renderers of one result type, keyed by format name.

    ``builtins`` maps each built-in format to ``"module:attribute"`` (a function of the value,
    or a renderer class taking options), in the order the formats are listed to users.
    """

    def __init__(self, name: str, describe: str, builtins: dict[str, str], *,
                 prepare: Callable[[], None] | None = None) -> None:
        self.name = name
        self.describe = describe
        self._builtins = dict(builtins)
        self._added: dict[str, Factory[T]] = {}
        self._prepare = prepare  # run before the first look-up: loads the plug-ins

    def _ready(self) -> None:
        prepare, self._prepare = self._prepare, None
        if prepare is not None:
            prepare()

    def add(self, fmt: str, renderer: Callable[[T], str] | Factory[T]) -> None:
        """Add (or replace) format ``fmt``: a function of the value or a renderer factory."""
        self._added[fmt] = _as_factory(fmt, renderer)

    def formats(self) -> list[str]:
        """Built-in formats in their listed order, then added ones alphabetically."""
        self._ready()
        return list(self._builtins) + sorted(f for f in self._added if f not in self._builtins)

    def __contains__(self, fmt: object) -> bool:
        self._ready()
        return fmt in self._builtins or fmt in self._added

    def factory(self, fmt: str) -> Factory[T]:
        """The factory of ``fmt``, or a usage error listing the formats that do apply."""
        self._ready()
        if fmt in self._added:
            return self._added[fmt]
        where = self._builtins.get(fmt)
        if where is None:
            formats = self.formats()
            if not formats:
                raise NotAvailableError(f"analyzing {self.describe} is not available yet in "
                                        "this version of attest")
            raise UsageError(f"--format {fmt} does not apply to {self.describe}; use one of: "
                             + ", ".join(formats))
        module, _, attribute = where.partition(":")
        return _as_factory(fmt, getattr(importlib.import_module(module), attribute))

    def renderer(self, fmt: str, **options: Any) -> Renderer[T]:
        """A renderer of ``fmt`` made with ``options`` (see :meth:`factory` for errors)."""
        return self.factory(fmt)(**options)

    def render(self, fmt: str, value: T, **options: Any) -> str:
        """Shorthand: look up ``fmt``, make it with ``options``, render ``value``."""
        return self.renderer(fmt, **options).render(value)
