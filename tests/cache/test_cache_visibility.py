"""The key covers what a step can see: behind symlinks, empty directories, modes, outputs."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.support import attest, write_pipeline

PIPELINE = """
steps:
  read:
    run: mkdir -p .count out && echo x >> .count/read && (ls -R src; cat src/*.txt) > out/seen.txt
    inputs: [src/]
    outputs: [out/]
"""
PAST = 1_600_000_000


def run(root: Path) -> dict:
    report = root / ".attest" / "r.json"
    report.unlink(missing_ok=True)
    proc = attest("run", "--log-format", "json", "--report", str(report), cwd=root)
    assert proc.returncode == 0, proc.stderr
    step = json.loads(report.read_text())["steps"][0]
    step["stderr"] = proc.stderr
    return step


def runs(root: Path) -> int:
    return len((root / ".count" / "read").read_text().splitlines())


def aged(path: Path) -> None:
    """Old enough for the stat index to remember it (not "racily clean")."""
    os.utime(path, (PAST, PAST), follow_symlinks=False)


def project_with(root: Path) -> Path:
    (root / "src").mkdir()
    (root / "src" / "a.txt").write_text("alpha\n")
    aged(root / "src" / "a.txt")
    write_pipeline(root, PIPELINE)
    return root


def test_editing_the_target_of_a_file_symlink_changes_the_key(project: Path) -> None:
    project_with(project)
    (project / "data").mkdir()
    target = project / "data" / "real.txt"
    target.write_text("one\n")
    aged(target)
    (project / "src" / "link.txt").symlink_to("../data/real.txt")
    assert run(project)["status"] == "success"
    assert run(project)["status"] == "cached"
    # same size, same mtime: only the content (and the ctime) differ; the link is untouched
    target.write_text("two\n")
    aged(target)
    third = run(project)
    assert third["status"] == "success", third
    assert "input src/link.txt changed" in third["cache_miss_reason"]
    assert "two" in (project / "out" / "seen.txt").read_text()
    assert runs(project) == 2


def test_files_under_a_directory_symlink_are_in_the_key(project: Path) -> None:
    project_with(project)
    (project / "vendor" / "lib").mkdir(parents=True)
    (project / "vendor" / "lib" / "x.h").write_text("x\n")
    aged(project / "vendor" / "lib" / "x.h")
    (project / "src" / "lib").symlink_to("../vendor/lib")
    assert run(project)["status"] == "success"
    assert run(project)["status"] == "cached"
    (project / "vendor" / "lib" / "y.h").write_text("y\n")
    third = run(project)
    assert third["status"] == "success"
    assert "input src/lib/y.h added" in third["cache_miss_reason"]
    (project / "vendor" / "lib" / "x.h").write_text("X\n")
    aged(project / "vendor" / "lib" / "x.h")
    fourth = run(project)
    assert fourth["status"] == "success"
    assert "input src/lib/x.h changed" in fourth["cache_miss_reason"]


def test_a_symlink_loop_in_the_inputs_does_not_hang(project: Path) -> None:
    project_with(project)
    (project / "src" / "loop").symlink_to(".")
    assert run(project)["status"] == "success"
    assert run(project)["status"] == "cached"


def test_an_empty_directory_in_the_inputs_changes_the_key(project: Path) -> None:
    project_with(project)
    assert run(project)["status"] == "success"
    (project / "src" / "empty").mkdir()
    second = run(project)
    assert second["status"] == "success"
    assert "input src/empty added" in second["cache_miss_reason"]
    (project / "src" / "empty").rmdir()
    assert run(project)["status"] == "cached"


def test_owner_permission_changes_change_the_key(project: Path) -> None:
    project_with(project)
    assert run(project)["status"] == "success"
    (project / "src" / "a.txt").chmod(0o444)  # read-only now: a step may behave differently
    second = run(project)
    assert second["status"] == "success"
    assert "input src/a.txt changed" in second["cache_miss_reason"]


def test_group_and_other_bits_are_excluded_with_a_warning(project: Path) -> None:
    project_with(project)
    (project / "src" / "a.txt").chmod(0o644)
    assert run(project)["status"] == "success"
    (project / "src" / "a.txt").chmod(0o600)
    second = run(project)
    assert second["status"] == "cached"  # umask-dependent bits: deliberately not in the key
    assert "group/other permission bits are not part of the cache key" in second["stderr"]


def test_changing_the_declared_outputs_changes_the_key(project: Path) -> None:
    project_with(project)
    assert run(project)["status"] == "success"
    write_pipeline(project, PIPELINE.replace("outputs: [out/]", "outputs: [out/, missing.txt]"))
    second = run(project)
    assert second["status"] == "success"  # ran, instead of a hit restoring the old entry
    assert "outputs changed" in second["cache_miss_reason"]
    assert "declared output missing.txt was not produced" in second["stderr"]
    third = run(project)  # never stored: it keeps running until it produces what it declares
    assert third["status"] == "success"
    assert runs(project) == 3


def test_stat_index_sees_an_edited_symlink_target_and_restat_reports_it(tmp_path: Path
                                                                        ) -> None:
    from attest_cli.cache.inputs import input_states
    from attest_cli.cache.statindex import StatIndex, restat

    (tmp_path / "src").mkdir()
    target = tmp_path / "real.txt"
    target.write_text("one\n")
    aged(target)
    (tmp_path / "src" / "link").symlink_to("../real.txt")
    index = StatIndex(tmp_path / "index.json")
    first = input_states(tmp_path, ["src/"], index)
    index.save()
    assert [(s.path, s.kind) for s in first] == [("src/link", "symlink")]
    link_stat = (tmp_path / "src" / "link").lstat()
    target.write_text("two\n")
    aged(target)
    assert (tmp_path / "src" / "link").lstat().st_mtime_ns == link_stat.st_mtime_ns
    assert restat(tmp_path, first) == ["src/link"]  # changed while a step ran: not stored
    reloaded = StatIndex(tmp_path / "index.json")
    second = input_states(tmp_path, ["src/"], reloaded)
    assert second[0].target_state != first[0].target_state
    assert reloaded.hashed == 1  # re-read, not taken from the index


def test_receipts_over_linked_and_empty_inputs_verify(project: Path) -> None:
    project_with(project)
    (project / "vendor").mkdir()
    (project / "vendor" / "x.h").write_text("x\n")
    (project / "src" / "lib").symlink_to("../vendor")
    (project / "src" / "empty").mkdir()
    for _ in range(2):  # ran, then restored from the cache
        proc = attest("run", "--sign", "--verify", cwd=project)
        assert proc.returncode == 0, proc.stderr
