"""The steps' last-entry records: one file per pipeline, still explaining every miss."""

from __future__ import annotations

import json
from pathlib import Path

from attest_cli.cache.records import MAX_RECORDS_BYTES, StepRecords
from tests.cache.helpers import make_project, run, step
from tests.support import attest


def test_a_run_writes_one_record_file_and_misses_are_still_explained(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    run(project)
    steps_dir = project / ".attest" / "cache" / "steps"
    files = sorted(p.name for p in steps_dir.iterdir())
    assert len(files) == 1 and files[0].endswith(".records.json")  # not one per step
    records = json.loads((steps_dir / files[0]).read_text())
    assert sorted(records) == ["final", "gen", "other"]
    (project / "src" / "a.txt").write_text("changed\n")
    _, report = run(project)
    assert "input src/a.txt changed" in step(report, "gen")["cache_miss_reason"]
    explained = attest("cache", "explain", "other", cwd=project)
    assert explained.returncode == 0, explained.stderr
    assert "a.txt" not in explained.stdout  # other's key did not change
    # the run's new records replaced the old ones; the others are kept
    after = json.loads((steps_dir / files[0]).read_text())
    assert after["gen"]["key"] != records["gen"]["key"]
    assert after["other"] == records["other"]


def test_a_record_file_of_an_earlier_version_still_explains_a_miss(tmp_path: Path) -> None:
    """Earlier versions kept one record file per step; a step missing from the map is
    looked up there (the directory is listed once per run, not opened per step)."""
    from attest_cli.digest import bytes_digest

    project = make_project(tmp_path)
    run(project)
    steps_dir = project / ".attest" / "cache" / "steps"
    (single,) = steps_dir.iterdir()
    records = json.loads(single.read_text())
    single.unlink()
    root = (project / "attest.yaml").resolve().parent
    ident = bytes_digest(f"{root}\0cachetest\0gen".encode())[7:39]
    (steps_dir / f"{ident}.json").write_text(json.dumps(records["gen"]))
    (project / "src" / "a.txt").write_text("changed\n")
    _, report = run(project)
    assert "input src/a.txt changed" in step(report, "gen")["cache_miss_reason"]
    assert step(report, "other")["status"] == "cached"


def test_records_of_concurrent_savers_are_merged(tmp_path: Path) -> None:
    path = tmp_path / "p.records.json"
    a, b = StepRecords(path), StepRecords(path)
    assert a.get("x") is None  # both read the (missing) file before either saves
    assert b.get("y") is None
    a.put("x", {"key": "1", "components": {}})
    b.put("y", {"key": "2", "components": {}})
    assert a.save() and b.save()
    fresh = StepRecords(path)
    assert (fresh.key("x"), fresh.key("y")) == ("1", "2")


def test_a_damaged_or_oversized_record_file_is_ignored_and_replaced(tmp_path: Path) -> None:
    path = tmp_path / "p.records.json"
    path.write_text("{not json")
    records = StepRecords(path)
    assert records.get("x") is None
    records.put("x", {"key": "1", "components": {"command": "c"}})
    assert records.save()
    assert StepRecords(path).key("x") == "1"
    path.write_text('{"x": {"key": "1", "components": "not a dict"}}')
    assert StepRecords(path).get("x") is None
    assert MAX_RECORDS_BYTES == 256 * 2**20  # the documented bound
