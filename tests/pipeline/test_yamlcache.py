"""The pipeline's parse, kept between runs: reused only for the same bytes, never a secret."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from attest_cli import yamlcache as parse_cache
from attest_cli import yamlfile
from attest_cli.context import AppContext
from attest_cli.runner.features import RunOptions
from attest_cli.runner.loading import load
from tests.support import attest, write_pipeline

pytestmark = pytest.mark.unit

PIPELINE = """
steps:
  build:
    run: cp src.txt out.txt
    inputs: [src.txt]
    outputs: [out.txt]
    env: {MODE: fast}
  test:
    run: cat out.txt
    needs: [build]
"""


def loaded(root: Path, environ: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    ctx = AppContext(workdir=root, environ=dict(environ or {}))
    return load(ctx, RunOptions())


def no_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("the file was parsed again")

    monkeypatch.setattr(parse_cache, "load_yaml", refuse)


def test_the_same_bytes_are_neither_parsed_nor_validated_again(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_pipeline(project, PIPELINE)
    first, _settings, order = loaded(project)
    assert list((project / ".attest" / "parsed").iterdir())
    no_parsing(monkeypatch)
    monkeypatch.setattr("attest_cli.pipeline.loader._step", lambda *a: pytest.fail("validated"))
    again, _settings, order_again = loaded(project)
    assert again.steps == first.steps and again.env == first.env
    assert (again.name, again.root, again.source_digest) == \
        (first.name, first.root, first.source_digest)
    assert order_again == order == ["build", "test"]


def test_an_edit_that_keeps_size_and_mtime_is_parsed(project: Path) -> None:
    path = write_pipeline(project, PIPELINE)
    loaded(project)
    st = path.stat()
    path.write_text(PIPELINE.replace("cat out.txt", "wc out.txt"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    pipeline, _s, _o = loaded(project)
    assert pipeline.steps["test"].run == "wc out.txt"


def test_a_default_name_follows_the_directory_not_the_kept_parse(tmp_path: Path) -> None:
    one = tmp_path / "one"
    one.mkdir()
    write_pipeline(one, PIPELINE)
    assert loaded(one)[0].name == "one"
    two = tmp_path / "two"
    shutil.copytree(one, two)  # .attest/parsed comes along
    assert loaded(two)[0].name == "two"


def test_a_damaged_entry_is_ignored_and_rewritten(project: Path) -> None:
    write_pipeline(project, PIPELINE)
    loaded(project)
    entry = next((project / ".attest" / "parsed").iterdir())
    entry.write_bytes(b"\x00garbage")
    assert loaded(project)[0].steps["build"].env == {"MODE": "fast"}
    assert entry.read_bytes() != b"\x00garbage"


def test_no_entry_holds_a_secret_value(project: Path) -> None:
    """A step's secret given a value in the file, and a credential in a URL of the
    settings: the parse is not kept (and one kept before is removed)."""
    write_pipeline(project, PIPELINE)
    loaded(project)
    parsed = project / ".attest" / "parsed"
    assert list(parsed.iterdir())
    write_pipeline(project, PIPELINE.replace("env: {MODE: fast}",
                                             "env: {TOKEN: s3cr3t-value}\n    secrets: [TOKEN]"))
    loaded(project)
    assert not [p for p in parsed.iterdir() if b"s3cr3t-value" in p.read_bytes()]
    write_pipeline(project, PIPELINE + "cache:\n  backend: redis\n"
                   "  endpoint: redis://user:pa55word@127.0.0.1:1/0\n")
    loaded(project)
    assert not [p for p in parsed.iterdir() if b"pa55word" in p.read_bytes()]


def test_a_dry_run_keeps_nothing(project: Path) -> None:
    write_pipeline(project, PIPELINE)
    (project / "src.txt").write_text("x\n")
    proc = attest("run", "--dry-run", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert not (project / ".attest" / "parsed").exists()


def test_a_value_marshal_cannot_hold_is_parsed_every_time(project: Path) -> None:
    """A YAML timestamp (a datetime.date) cannot be kept: no entry, no error."""
    doc = yamlfile.load_yaml(project / "attest.yaml", text="when: 2024-01-01\n")
    doc.digest = "blake3:x"
    entry = project / ".attest" / "parsed" / "e.marshal"
    parse_cache._pending[id(doc)] = (doc, entry, None)
    parse_cache.settle(doc, [])
    assert not entry.exists()


def test_configuration_files_are_kept_too_unless_they_hold_a_credential(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_pipeline(project, PIPELINE)
    config = project / ".attest" / "config.yaml"
    config.parent.mkdir()
    config.write_text("monitoring:\n  prometheus:\n    enabled: false\n"
                      "    endpoint: \"127.0.0.1:9999\"\n")
    _p, settings, _o = loaded(project)
    assert settings["monitoring.prometheus.endpoint"] == "127.0.0.1:9999"
    no_parsing(monkeypatch)
    _p, settings, _o = loaded(project)  # neither file is parsed again
    assert settings["monitoring.prometheus.endpoint"] == "127.0.0.1:9999"
    monkeypatch.undo()
    config.write_text("cache:\n  backend: redis\n"
                      "  endpoint: redis://:hunter2-pw@127.0.0.1:1/0\n")
    loaded(project)
    kept = list((project / ".attest" / "parsed").iterdir())
    assert kept and not [p for p in kept if b"hunter2-pw" in p.read_bytes()]


def test_a_cached_load_leaves_the_steps_unread_yet_they_come_back_whole(
        project: Path) -> None:
    """The kept parse holds the steps back: a cached run rebuilds them from the prepared
    form, reads the settings beside them, and never unmarshals them; asking for the data
    or a line under them brings them back, in the parser's order."""
    write_pipeline(project, "name: demo\n" + PIPELINE + "cache:\n  enabled: false\n")
    first = AppContext(workdir=project, environ={}).pipeline_doc(required=True,
                                                                reuse_parse=True)
    assert first is not None
    loaded(project)  # writes the entry
    ctx = AppContext(workdir=project, environ={})
    pipeline, settings, _order = load(ctx, RunOptions())
    assert settings.get("cache.enabled") is False  # a section beside the steps
    doc = ctx.pipeline_doc(required=True, reuse_parse=True)
    assert doc is not None and doc.deferred is not None and doc.deferred[0] == "steps"
    assert "steps" not in doc.head and doc.head["name"] == "demo"
    assert doc.line("steps", "test", "needs") == first.line("steps", "test", "needs") == 11
    assert doc.deferred is None  # brought back by the line asked for
    assert list(doc.data) == list(first.data) == ["name", "steps", "cache"]
    assert doc.data == first.data and doc.lines == first.lines
    assert pipeline.steps["test"].needs == ("build",)


def test_a_damaged_held_back_part_is_one_located_error(project: Path) -> None:
    write_pipeline(project, PIPELINE)
    loaded(project)
    doc = AppContext(workdir=project, environ={}).pipeline_doc(required=True,
                                                              reuse_parse=True)
    assert doc is not None and doc.deferred is not None
    doc._deferred = ("steps", b"\x00garbage")  # as a disk error would leave it
    with pytest.raises(yamlfile.InputError, match=r"kept parse .* is damaged") as err:
        _ = doc.data
    assert err.value.path == doc.path
