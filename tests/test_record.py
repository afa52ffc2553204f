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
