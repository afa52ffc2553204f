"""The run path's plain value classes: what they keep of a dataclass's behaviour."""

from __future__ import annotations

import pickle
from typing import ClassVar

import pytest

from attest_cli.record import FrozenError, FrozenRecord, Record, as_dict, fields_of


class Point(Record):
    _uncompared = frozenset({"note"})
    _unshown = frozenset({"note"})
    limit: ClassVar[int] = 3
    x: int
    y: int
    note: str

    def __init__(self, x: int, y: int = 0, note: str = "") -> None:
        self.__dict__.update(x=x, y=y, note=note)


class Point3(Point):
    z: int

    def __init__(self, x: int, y: int, z: int) -> None:
        super().__init__(x, y)
        self.z = z


class Key(FrozenRecord):
    name: str
    parts: tuple[str, ...]

    def __init__(self, name: str, parts: tuple[str, ...] = ()) -> None:
        self.__dict__.update(name=name, parts=parts)


def test_fields_are_the_annotations_in_order_base_first_without_class_variables() -> None:
    assert fields_of(Point) == ("x", "y", "note")
    assert fields_of(Point3(1, 2, 3)) == ("x", "y", "note", "z")
    assert as_dict(Point3(1, 2, 3)) == {"x": 1, "y": 2, "note": "", "z": 3}


def test_equality_is_by_value_and_class_and_skips_uncompared_fields() -> None:
    assert Point(1, 2, note="a") == Point(1, 2, note="b")
    assert Point(1, 2) != Point(1, 3)
    assert Point(1, 2) != Point3(1, 2, 0)  # another class, as dataclasses compare
    assert Point(1, 2) != (1, 2)
    with pytest.raises(TypeError):
        hash(Point(1, 2))  # mutable: unhashable


def test_repr_names_the_class_and_the_shown_fields() -> None:
    assert repr(Point(1, 2, note="secret")) == "Point(x=1, y=2)"
    assert repr(Key("a", ("b",))) == "Key(name='a', parts=('b',))"


def test_a_frozen_record_refuses_assignment_and_hashes_by_value() -> None:
    key = Key("a", ("b",))
    with pytest.raises(FrozenError, match="cannot assign to field 'name'"):
        key.name = "c"
    with pytest.raises(AttributeError):  # FrozenError is one, as FrozenInstanceError is
        del key.parts
    assert hash(key) == hash(Key("a", ("b",)))
    assert {key, Key("a", ("b",))} == {key}
    assert pickle.loads(pickle.dumps(key)) == key


def test_compact_json_writes_a_record_as_its_fields() -> None:
    from attest_cli import compactjson

    assert compactjson.loads(compactjson.dumps({"p": Point(1, 2, note="n")})) == \
        {"p": {"x": 1, "y": 2, "note": "n"}}
    # the standard library's path (a lone surrogate orjson refuses) writes the same
    assert compactjson.loads(compactjson.dumps([Key("\udcff", ("b",))])) == \
        [{"name": "\udcff", "parts": ["b"]}]


def _records() -> list[type[Record]]:
    import importlib
    import pkgutil

    import attest_cli

    for info in pkgutil.walk_packages(attest_cli.__path__, "attest_cli."):
        if info.name.endswith(("__main__", "launcher_server")):
            continue
        try:
            importlib.import_module(info.name)
        except ImportError:  # an optional dependency this interpreter lacks
            continue
    found: list[type[Record]] = []
    todo = list(Record.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("attest_cli.") and cls.__module__ != "attest_cli.record":
            found.append(cls)
    return found


def test_every_records_init_takes_its_fields_in_order() -> None:
    # a record's fields are its annotations, read from the class (postponed: strings), and
    # its __init__ is written by hand: the two must name the same fields in the same order,
    # or repr, == and as_dict would silently skip or invent one
    import inspect

    records = _records()
    assert len(records) >= 40
    for cls in records:
        assert cls._fields, cls
        if "__init__" not in vars(cls):  # a snapshot subclass, built by copying
            continue
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        assert sorted(p.name for p in params) == sorted(cls._fields), cls
        positional = [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
        assert positional == [f for f in cls._fields if f in positional], cls
