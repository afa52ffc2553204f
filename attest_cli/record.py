"""Plain classes for the values every run creates, in place of dataclasses on the run's path.

Why not ``@dataclass``: it writes each class's ``__init__``, ``__repr__`` and ``__eq__`` (and,
frozen, ``__setattr__``, ``__delattr__``, ``__hash__``) as source and compiles it with
``exec`` when the module is imported - on every start, never cached in a ``.pyc`` - and
importing :mod:`dataclasses` imports :mod:`inspect` (with ``ast``, ``dis``, ``tokenize``).
With Python 3.11 the 40 dataclasses an ``attest run`` imported cost 18 ms to define, and
the import 7 ms: a quarter of the time a run spent before its first step (issue 14). A
class that writes its ``__init__`` out is compiled once, into its ``.pyc``.

So each class on the run's path subclasses :class:`Record` (or :class:`FrozenRecord`),
declares its fields as annotations, and writes its ``__init__`` (fast: one
``self.__dict__.update`` per instance); :class:`Record` gives it, from those annotations,
the ``repr`` and value equality a dataclass would have had, and ``fields_of`` lists them in
declaration order, base classes first. The instances keep a ``__dict__`` (reports and
results are copied through it). Modules off the run's path (analysis, benchmarks, remote
execution) keep their dataclasses.
"""

from __future__ import annotations

from typing import Any, ClassVar


class FrozenError(AttributeError):
    """An assignment to a field of a :class:`FrozenRecord` (dataclasses' FrozenInstanceError
    is also an AttributeError)."""


class Record:
    """Value equality and a readable ``repr`` over the annotated fields.

    ``_uncompared`` names fields left out of equality and hashing (a lock, a position in a
    file); ``_unshown`` fields left out of ``repr``. Mutable: unhashable, as a dataclass
    with ``eq=True`` is.
    """

    _fields: ClassVar[tuple[str, ...]] = ()
    _compared: ClassVar[tuple[str, ...]] = ()
    _shown: ClassVar[tuple[str, ...]] = ()
    _uncompared: ClassVar[frozenset[str]] = frozenset()
    _unshown: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        names: list[str] = []
        for klass in reversed(cls.__mro__):
            for name, annotation in vars(klass).get("__annotations__", {}).items():
                if name in names:
                    continue
                if "ClassVar" in str(annotation):  # a string under postponed annotations
                    continue
                names.append(name)
        cls._fields = tuple(names)
        cls._compared = tuple(n for n in names if n not in cls._uncompared)
        cls._shown = tuple(n for n in names if n not in cls._unshown)

    def __repr__(self) -> str:
        values = self.__dict__
        shown = ", ".join(f"{name}={values.get(name)!r}" for name in self._shown)
        return f"{type(self).__qualname__}({shown})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        mine, theirs = self.__dict__, other.__dict__
        return all(mine.get(name) == theirs.get(name) for name in self._compared)

    __hash__ = None  # type: ignore[assignment]  # mutable values are not hashable


class FrozenRecord(Record):
    """A :class:`Record` whose fields cannot be assigned after ``__init__`` (which sets them
    through ``self.__dict__``), and which hashes by value, as a frozen dataclass does."""

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenError(f"cannot delete field {name!r}")

    def __hash__(self) -> int:  # type: ignore[override]  # Record: None
        values = self.__dict__
        return hash(tuple(values.get(name) for name in self._compared))


def fields_of(cls: type[Record] | Record) -> tuple[str, ...]:
    """The field names of a record class (or instance), in declaration order."""
    return cls._fields


def as_dict(record: Record) -> dict[str, Any]:
    """The record's fields and their values, shallow (``dataclasses.asdict`` copies deep)."""
    values = record.__dict__
    return {name: values.get(name) for name in record._fields}
