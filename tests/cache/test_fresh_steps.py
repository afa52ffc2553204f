"""Up-to-date steps are replayed without a lookup, and never when anything they cover moved.

Each test first proves the shortcut is taken (``up_to_date`` on the ``cache.hit`` debug
line), then changes one thing the key covers and checks the step runs again (or, for a
touched output, is restored from its entry) - a stale "fresh" answer is the one failure
this index must never have.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from attest_cli.cache.fresh import FreshIndex
from attest_cli.cache.statindex import RACY_SECONDS, FileState, signature_of
from attest_cli.pipeline.model import Pipeline, Step
from tests.support import attest, delete_cache_entry, write_pipeline

PIPELINE = """
steps:
  make:
    run: mkdir -p .count && echo x >> .count/make && cp src.txt out.txt
    inputs: [src.txt]
    outputs: [out.txt]
  use:
    run: mkdir -p .count && echo x >> .count/use && cat out.txt out.txt > twice.txt
    needs: [make]
    outputs: [twice.txt]
"""


def run(root: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, dict]:
    """Run; each step's report entry plus how its cache check went (``up_to_date``)."""
    report = root / ".attest" / "r.json"
    report.unlink(missing_ok=True)
    proc = attest("run", "--log-format", "json", "--log-level", "debug", "--report",
                  str(report), *args, cwd=root, env=env)
    assert proc.returncode == 0, proc.stderr
    steps = {s["name"]: s for s in json.loads(report.read_text())["steps"]}
    for line in proc.stderr.splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if record.get("message") == "cache.hit":
            fields = record["fields"]
            steps[fields["step"]]["up_to_date"] = fields["up_to_date"]
    return steps


def count(root: Path, step: str) -> int:
    path = root / ".count" / step
    return len(path.read_text().splitlines()) if path.exists() else 0


def settled(root: Path) -> dict[str, dict]:
    """Build, wait out the racy window, run once more to record: the index is primed."""
    run(root)
    time.sleep(RACY_SECONDS + 0.2)
    steps = run(root)  # a full lookup: files have settled, so this one records them
    assert [steps[n].get("up_to_date") for n in ("make", "use")] == [False, False]
    return steps


@pytest.fixture
def proj(project: Path) -> Path:
    (project / "src.txt").write_text("one\n")
    write_pipeline(project, PIPELINE)
    settled(project)
    return project


def test_an_unchanged_pipeline_is_answered_by_the_up_to_date_check(proj: Path) -> None:
    before = run(proj)
    steps = run(proj)
    assert all(s["status"] == "cached" and s["up_to_date"] for s in steps.values())
    assert (count(proj, "make"), count(proj, "use")) == (1, 1)
    # the report carries what a full lookup reports: key, digests of inputs and outputs
    for name in ("make", "use"):
        for field in ("cache_key", "output_digest", "inputs", "outputs", "cache_backend"):
            assert steps[name][field] == before[name][field], (name, field)
    assert steps["make"]["inputs"] == [{"path": "src.txt", "hash": before["make"]["inputs"][0]
                                        ["hash"]}]


def test_an_input_edited_behind_an_unchanged_mtime_reruns(proj: Path) -> None:
    src = proj / "src.txt"
    st = src.stat()
    src.write_text("two\n")  # same size
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime put back: ctime moved
    steps = run(proj)
    assert steps["make"]["status"] == "success" and "up_to_date" not in steps["make"]
    assert (proj / "out.txt").read_text() == "two\n"
    assert steps["use"]["status"] == "success"  # its needed step's output changed
    assert (proj / "twice.txt").read_text() == "two\ntwo\n"


def test_a_touched_output_is_restored_from_its_entry_not_trusted(proj: Path) -> None:
    (proj / "out.txt").write_text("tampered\n")
    steps = run(proj)
    assert steps["make"]["status"] == "cached" and steps["make"]["up_to_date"] is False
    assert (proj / "out.txt").read_text() == "one\n"
    assert count(proj, "make") == 1


def test_a_changed_command_or_cache_env_value_reruns(proj: Path) -> None:
    write_pipeline(proj, PIPELINE.replace("cat out.txt out.txt", "cat out.txt"))
    steps = run(proj)
    # the file changed, but make's definition did not: its fingerprint says so
    assert steps["make"]["up_to_date"] is True
    assert steps["use"]["status"] == "success" and (proj / "twice.txt").read_text() == "one\n"

    write_pipeline(proj, PIPELINE.replace("outputs: [out.txt]",
                                          "outputs: [out.txt]\n    cache_env: [FLAVOUR]"))
    run(proj, env={"FLAVOUR": "a"})
    time.sleep(RACY_SECONDS + 0.2)
    run(proj, env={"FLAVOUR": "a"})  # records
    assert run(proj, env={"FLAVOUR": "a"})["make"]["up_to_date"] is True
    steps = run(proj, env={"FLAVOUR": "b"})
    assert steps["make"]["status"] == "success"


def test_a_cleared_cache_reruns_even_with_outputs_in_place(proj: Path) -> None:
    proc = attest("cache", "clear", cwd=proj)
    assert proc.returncode == 0, proc.stderr
    steps = run(proj)
    assert steps["make"]["status"] == "success" and count(proj, "make") == 2


def test_an_evicted_entry_is_not_vouched_for(proj: Path) -> None:
    """Eviction (size or age limits) removes entries but not the index: an up-to-date
    answer names an entry the cache still has, or it is not given."""
    key = run(proj)["make"]["cache_key"]
    delete_cache_entry(proj / ".attest" / "cache", key)
    steps = run(proj)
    assert "up_to_date" not in steps["make"] and steps["make"]["status"] == "success"
    assert steps["use"]["up_to_date"] is True  # same output digest: still up to date


def test_a_record_kept_by_a_partial_run_is_not_trusted_after_an_edit(proj: Path) -> None:
    """``--step make`` after editing ``use``: the run keeps use's record (it did not run),
    but that record was made from other file bytes, so it is checked in full."""
    write_pipeline(proj, PIPELINE.replace("cat out.txt out.txt", "cat out.txt"))
    run(proj, "--step", "make")
    steps = run(proj)
    assert steps["use"]["status"] == "success" and (proj / "twice.txt").read_text() == "one\n"


def test_a_damaged_index_is_ignored_and_rewritten(proj: Path) -> None:
    index = next((proj / ".attest" / "cache" / "fresh").iterdir())
    index.write_bytes(b"\xff\x00not marshal")
    steps = run(proj)
    assert steps["make"]["status"] == "cached" and steps["make"]["up_to_date"] is False
    assert run(proj)["make"]["up_to_date"] is True


def test_racily_clean_and_non_literal_steps_are_not_recorded(tmp_path: Path) -> None:
    """A file changed in the last RACY_SECONDS could change again within the same
    timestamp tick; a glob's membership is not vouched for by an lstat of its matches."""
    root = tmp_path
    (root / "old.txt").write_text("x")
    os.utime(root / "old.txt", (1_600_000_000, 1_600_000_000))
    (root / "new.txt").write_text("y")
    pipeline = Pipeline(name="p", path=root / "attest.yaml", root=root, steps={})

    def state(name: str) -> FileState:
        st = os.lstat(root / name)
        return FileState(path=name, kind="file", mode=0o644, size=st.st_size,
                         digest="blake3:x", signature=signature_of(st))

    index = FreshIndex(root / "fresh.marshal")
    common = {"output_digest": "blake3:o", "components": {}, "outputs": [],
              "log_digest": None}
    steps = {"fresh": Step(name="fresh", run="true", inputs=("new.txt",)),
             "glob": Step(name="glob", run="true", inputs=("*.txt",)),
             "old": Step(name="old", run="true", inputs=("old.txt",))}
    inputs = {"fresh": "new.txt", "glob": "old.txt", "old": "old.txt"}
    for name, step in steps.items():
        index.note(pipeline, step, {}, key=f"k-{name}", inputs=[state(inputs[name])],
                   **common)  # type: ignore[arg-type]
    index.save({name: True for name in steps})
    # only "old" would be recorded. A ctime cannot be set back, so even old.txt's is new
    # here: nothing is; after the window it is.
    assert not index.path.exists()
    time.sleep(RACY_SECONDS + 0.1)
    index = FreshIndex(root / "fresh.marshal")
    for name, step in steps.items():
        index.note(pipeline, step, {}, key=f"k-{name}", inputs=[state(inputs[name])],
                   **common)  # type: ignore[arg-type]
    index.save({name: True for name in steps})
    reread = FreshIndex(root / "fresh.marshal")
    found = {name: reread.check(pipeline, step, {}, {}) for name, step in steps.items()}
    assert found["glob"] is None
    assert found["old"] is not None and found["old"].key == "k-old"
    assert found["fresh"] is not None  # settled by now: recordable, and unchanged
    (root / "new.txt").write_text("z")
    assert FreshIndex(root / "fresh.marshal").check(pipeline, steps["fresh"], {}, {}) is None


TREE = """
steps:
  pack:
    run: >-
      mkdir -p .count out && echo x >> .count/pack &&
      (cd data && find . -type f | sort | xargs cat) > out/all.txt
    inputs: ["data/**"]
    outputs: [out/]
"""


def test_a_directory_tree_is_vouched_for_by_its_directories(project: Path) -> None:
    (project / "data" / "sub").mkdir(parents=True)
    (project / "data" / "a.txt").write_text("a\n")
    (project / "data" / "sub" / "b.txt").write_text("b\n")
    write_pipeline(project, TREE)
    run(project)
    time.sleep(RACY_SECONDS + 0.2)
    run(project)
    assert run(project)["pack"]["up_to_date"] is True
    # a file added two levels down: only its directory's signature moved
    (project / "data" / "sub" / "c.txt").write_text("c\n")
    steps = run(project)
    assert steps["pack"]["status"] == "success" and count(project, "pack") == 2
    assert (project / "out" / "all.txt").read_text() == "a\nb\nc\n"
    time.sleep(RACY_SECONDS + 0.2)
    run(project)
    assert run(project)["pack"]["up_to_date"] is True
    # the report lists what a lookup lists: files only, not the empty directory
    (project / "data" / "empty").mkdir()
    looked_up = run(project)["pack"]  # the tree changed: a full lookup (and a run)
    time.sleep(RACY_SECONDS + 0.2)
    run(project)
    replayed = run(project)["pack"]
    assert replayed["up_to_date"] is True
    assert replayed["inputs"] == looked_up["inputs"]
    assert all(i["hash"] for i in replayed["inputs"])
    # a file removed from the output directory: not up to date, restored by the lookup
    (project / "out" / "all.txt").unlink()
    steps = run(project)
    assert steps["pack"]["status"] == "cached" and steps["pack"]["up_to_date"] is False
    assert (project / "out" / "all.txt").read_text() == "a\nb\nc\n"
    # a symlink in the tree: never recorded (its target can change under it)
    (project / "data" / "link.txt").symlink_to("a.txt")
    run(project)
    time.sleep(RACY_SECONDS + 0.2)
    run(project)
    assert run(project)["pack"]["up_to_date"] is False
