"""The located YAML builder: PyYAML's values, the line of every key path, one clear error.

The builder reads libyaml's events itself (``attest_cli.yamlfile``); these pin down that it
builds exactly what ``yaml.safe_load`` does and records the lines the error messages use.
"""

from __future__ import annotations

import sys
import textwrap

import pytest
import yaml

from attest_cli.errors import InputError
from attest_cli.yamlfile import load_yaml

DOC = textwrap.dedent("""\
    version: "0.1"
    env: {A: 1, B: "two", C: null, D: true, E: 1.5, F: 2020-01-01}
    base: &base
      run: make
      inputs: [a.c, "b.c", 'c.c']
    steps:
      build:
        <<: *base
        outputs:
          - out/a
          - out/b
      test:
        <<: [*base]
        run: make test
        env: !!map {X: !!str 1, Y: !!int "2"}
      mixed:
        - {a: 1}
        - [1, [2]]
        - ~
        - ! plain
        - 0x1F
        - .inf
        - yes
    """)

CORPUS = [
    DOC,
    "[1, 2, {a: b}]",
    "plain",
    "",
    "a: &x [1, 2]\nb: *x\nc: *x\n",
    "? complex\n: value\nk: |\n  literal\n  text\nf: >\n  folded\n  text\n",
    # (collection tags, !!set and !!omap, build plain mappings and sequences)
    "a: !!binary aGVsbG8=\nd: 2001-12-14t21:59:43.10-05:00\ne: !!float 1\nf: 0o17\ng: -.5\n",
]


@pytest.mark.unit
@pytest.mark.parametrize("text", CORPUS)
def test_values_are_what_pyyaml_safe_load_builds(text: str) -> None:
    assert load_yaml("x.yaml", text=text).data == yaml.safe_load(text)


@pytest.mark.unit
def test_the_line_of_every_key_list_item_and_merge() -> None:
    expected: dict[tuple[str, ...], int] = {
        (): 1, ("version",): 1, ("env",): 2,
        **{("env", k): 2 for k in "ABCDEF"},
        ("base",): 3, ("base", "run"): 4, ("base", "inputs"): 5,
        **{("base", "inputs", str(i)): 5 for i in range(3)},
        ("steps",): 6, ("steps", "build"): 7, ("steps", "build", "<<"): 8,
        ("steps", "build", "outputs"): 9, ("steps", "build", "outputs", "0"): 10,
        ("steps", "build", "outputs", "1"): 11,
        ("steps", "test"): 12, ("steps", "test", "<<"): 13, ("steps", "test", "<<", "0"): 13,
        ("steps", "test", "run"): 14, ("steps", "test", "env"): 15,
        ("steps", "test", "env", "X"): 15, ("steps", "test", "env", "Y"): 15,
        ("steps", "mixed"): 16, ("steps", "mixed", "0"): 17, ("steps", "mixed", "0", "a"): 17,
        ("steps", "mixed", "1"): 18, ("steps", "mixed", "1", "0"): 18,
        ("steps", "mixed", "1", "1"): 18, ("steps", "mixed", "1", "1", "0"): 18,
        **{("steps", "mixed", str(i)): 17 + i for i in range(2, 7)},
    }
    assert load_yaml("x.yaml", text=DOC).lines == expected


@pytest.mark.unit
def test_an_alias_is_located_where_it_is_used() -> None:
    lines = load_yaml("x.yaml", text="a: &a [1]\nb:\n  - *a\n  - *a\n").lines
    assert lines[("b", "0")] == 3 and lines[("b", "1")] == 4 and lines[("a", "0")] == 1


@pytest.mark.unit
@pytest.mark.parametrize(("text", "message"), [
    ("a: 1\nb:\n  c: 1\n  c: 2\n", "x.yaml:4: b.c: duplicate key 'c'"),
    ("a: 1\n? {b: 1}\n: x\n", "x.yaml:2: a mapping key must be a scalar"),
    ("a: 1\nb: *nope\n", "x.yaml:2: unknown alias '*nope'"),
    ("a: 1\n---\nb: 2\n", "x.yaml:2: expected a single document, found another"),
    ("a:\n  b: !!int ten\n", "x.yaml:2: bad value: 'ten' cannot be read as int"),
    ("a: !!float x\n", "x.yaml:1: bad value: 'x' cannot be read as float"),
    ("a: !!bool maybe\n", "x.yaml:1: bad value: 'maybe' cannot be read as bool"),
    ("a: !!timestamp no\n", "x.yaml:1: bad value: 'no' cannot be read as timestamp"),
    ("a: !!timestamp 2020-99-99\n", "x.yaml:1: bad value: '2020-99-99' cannot be read as "
                                    "timestamp"),
    ("a: !!int " + "7" * 5000 + "\n", "x.yaml:1: bad value: " + repr("7" * 40) + "... (5000 "
     f"characters) cannot be read as int (more than {sys.get_int_max_str_digits()} digits)"),
    ("a: !!float '" + "x" * 100_000 + "'\n", "x.yaml:1: bad value: " + repr("x" * 40)
     + "... (100000 characters) cannot be read as float"),
    ("env:\n  A: !!map x\n", "x.yaml:2: bad value: 'x' is a scalar, and !!map tags a "
                              "collection"),
    ("a: [!!seq x]\n", "x.yaml:1: bad value: 'x' is a scalar, and !!seq tags a collection"),
    ("a: !!set x\n", "x.yaml:1: bad value: 'x' is a scalar, and !!set tags a collection"),
    ("a:\n  - x\n  - " + "[" * 120 + "]" * 120 + "\n",
     "x.yaml:3: " + ".".join(["a", "1"] + ["0"] * 98) + ": nested more than 100 levels deep"),
])
def test_bad_documents_are_one_located_error(text: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        load_yaml("x.yaml", text=text)
    assert str(caught.value) == message


@pytest.mark.unit
def test_the_value_count_bounds_aliases_and_plain_values(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    import attest_cli.yamlfile as yamlfile

    monkeypatch.setattr(yamlfile, "MAX_NODES", 5)
    for text in ("a: &a [1, 2, 3]\nb: *a\n", "[1, 2, 3, 4, 5, 6]", "{a: 1, b: 2, c: 3}"):
        with pytest.raises(InputError, match="more than 5 values"):
            load_yaml("x.yaml", text=text)
    assert load_yaml("x.yaml", text="[1, 2, 3, 4]").data == [1, 2, 3, 4]
