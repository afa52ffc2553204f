"""The local step cache, end to end through the real CLI (``python -m attest_cli``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from attest_cli.cache.restore import process_umask
from tests.cache.helpers import (
    PIPELINE,
    log_events,
    make_project,
    run,
    runs,
    snapshot,
    statuses,
    step,
)
from tests.support import (
    REPO,
    attest,
    cache_entries,
    entry_of_step,
    write_cache_entry,
    write_pipeline,
)

OUTPUTS = ["out", "out/a.txt", "out/bin", "out/bin/run.sh", "out/empty", "out/link.txt",
           "other.txt", "final.txt"]


def test_first_run_stores_and_second_run_hits_without_executing(project: Path) -> None:
    make_project(project)
    _, first = run(project)
    assert statuses(first) == {"gen": "success", "other": "success", "final": "success"}
    assert first["cache"]["local"]["misses"] == 3
    assert first["cache"]["local"]["stored_bytes"] > 0
    assert step(first, "gen")["cache_miss_reason"] == "no earlier entry for this step"
    _, second = run(project)
    assert statuses(second) == {"gen": "cached", "other": "cached", "final": "cached"}
    assert second["cache"]["local"] == {"hits": 3, "misses": 0, "stored_bytes": 0}
    assert (runs(project, "gen"), runs(project, "other"), runs(project, "final")) == (1, 1, 1)
    # the captured log is replayed into the run's log file
    assert "generated gen" in Path(step(second, "gen")["log_file"]).read_text()
    assert step(second, "gen")["output_digest"] == step(first, "gen")["output_digest"]
    assert {o["path"] for o in step(second, "gen")["outputs"]} >= {"out/a.txt", "out/link.txt"}


def test_deleted_outputs_come_back_byte_identical_with_modes(project: Path) -> None:
    make_project(project)
    run(project)
    before = snapshot(project, OUTPUTS)
    for rel in ("out", "other.txt", "final.txt"):
        p = project / rel
        if p.is_dir():
            import shutil

            shutil.rmtree(p)
        else:
            p.unlink()
    _, report = run(project)
    assert set(statuses(report).values()) == {"cached"}
    # of a recorded mode only the executable bit is restored: the 0700 directory comes back
    # with the umask's mode (restores never take permission bits from an entry)
    before["out/empty"] = ("dir", 0o777 & ~process_umask())
    assert snapshot(project, OUTPUTS) == before
    assert (runs(project, "gen"), runs(project, "final")) == (1, 1)


def test_changed_input_reruns_exactly_the_downstream_steps(project: Path) -> None:
    make_project(project)
    run(project)
    (project / "src" / "b.txt").write_text("beta, changed\n")
    _, report = run(project)
    assert statuses(report) == {"gen": "cached", "other": "success", "final": "success"}
    assert step(report, "other")["cache_miss_reason"] == "input src/b.txt changed"
    assert step(report, "final")["cache_miss_reason"] == "output of needed step 'other' changed"
    assert (project / "final.txt").read_text() == "alpha\nbeta, changed\n"
    assert (runs(project, "gen"), runs(project, "other"), runs(project, "final")) == (1, 2, 2)


def test_run_verbose_explains_why_a_step_missed(project: Path) -> None:
    make_project(project)
    run(project)
    (project / "src" / "a.txt").write_text("alpha, changed\n")
    proc, _ = run(project, "-v")
    misses = {e["fields"]["step"]: e["fields"]["reason"] for e in log_events(proc.stderr,
                                                                             "cache.miss")}
    assert misses == {"gen": "input src/a.txt changed",
                      "final": "output of needed step 'gen' changed"}
    hits = [e["fields"]["step"] for e in log_events(proc.stderr, "cache.hit")]
    assert hits == ["other"]


def test_no_cache_flag_and_cache_false_steps_never_hit(project: Path) -> None:
    make_project(project, PIPELINE.replace("    outputs: [other.txt]",
                                           "    outputs: [other.txt]\n    cache: false"))
    run(project)
    _, report = run(project)
    assert statuses(report) == {"gen": "cached", "other": "success", "final": "cached"}
    _, report = run(project, "--no-cache")
    assert statuses(report) == {"gen": "success", "other": "success", "final": "success"}
    assert report["cache"] == {}
    assert (runs(project, "gen"), runs(project, "other")) == (2, 3)


def test_corrupt_blob_is_a_miss_and_is_deleted(project: Path) -> None:
    make_project(project)
    run(project)
    blobs = sorted((project / ".attest" / "cache" / "blobs").rglob("*"))
    log = next(p for p in blobs if p.is_file() and p.read_bytes() == b"generated gen\n")
    log.write_bytes(b"generated gxn\n")  # same size, different content
    (project / "out" / "a.txt").unlink()
    proc, report = run(project)
    assert report["status"] == "success"
    assert step(report, "gen")["status"] == "success"  # corrupt entry: executed, not failed
    assert "corrupt entry deleted" in step(report, "gen")["cache_miss_reason"]
    assert (project / "out" / "a.txt").read_text() == "alpha\n"
    assert runs(project, "gen") == 2
    assert "corrupt" in proc.stderr
    verify = attest("cache", "verify", cwd=project)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    _, report = run(project)
    assert statuses(report)["gen"] == "cached"


def test_small_outputs_are_held_in_their_manifest_and_large_ones_are_blobs(
        project: Path) -> None:
    write_pipeline(project, """
        name: inline
        steps:
          small: {run: "printf tiny > small.txt", outputs: [small.txt]}
          large: {run: "head -c 20000 /dev/zero | tr '\\\\0' z > large.txt", outputs: [large.txt]}
        """)
    run(project)
    cache = project / ".attest" / "cache"
    assert not (cache / "entries").exists()  # rows of the entry table, not a file each
    manifests = {json.loads(v)["step"]: json.loads(v) for v in cache_entries(cache).values()}
    small = manifests["small"]["files"][0]
    assert small["inline"] == "dGlueQ==" and small["size"] == 4  # base64 of "tiny"
    assert "inline" not in manifests["large"]["files"][0]
    blobs = [p for p in (cache / "blobs").rglob("*") if p.is_file()]
    assert [p.read_bytes() for p in blobs] == [b"z" * 20000]  # no blob for either empty log
    (project / "small.txt").unlink()
    (project / "large.txt").unlink()
    _, report = run(project)
    assert statuses(report) == {"small": "cached", "large": "cached"}
    assert (project / "small.txt").read_bytes() == b"tiny"
    assert (project / "large.txt").read_bytes() == b"z" * 20000


def test_inline_content_that_does_not_match_is_a_corrupt_entry(project: Path) -> None:
    make_project(project)
    run(project)
    cache = project / ".attest" / "cache"
    key, manifest = entry_of_step(cache, "gen")
    alpha = next(f for f in manifest["files"] if f["path"] == "out/a.txt")
    assert alpha["inline"] == "YWxwaGEK"  # "alpha\n"
    alpha["inline"] = "YWxwaHgK"  # "alphx\n": same size, different content
    write_cache_entry(cache, key, json.dumps(manifest).encode())
    (project / "out" / "a.txt").unlink()
    _, report = run(project)
    assert step(report, "gen")["status"] == "success"
    assert "inline content for 'out/a.txt' does not match its digest" in \
        step(report, "gen")["cache_miss_reason"]
    assert (project / "out" / "a.txt").read_text() == "alpha\n"
    assert runs(project, "gen") == 2


def test_corrupt_manifest_is_a_miss_and_verify_repairs(project: Path) -> None:
    make_project(project)
    run(project)
    cache = project / ".attest" / "cache"
    manifests = cache_entries(cache)
    assert len(manifests) == 3
    for key, data in manifests.items():
        write_cache_entry(cache, key, data[:-10])  # truncated JSON
    bad = attest("cache", "verify", cwd=project)
    assert bad.returncode == 1
    assert "3 entries checked, 3 with problems" in bad.stdout
    fixed = attest("cache", "verify", "--repair", cwd=project)
    assert fixed.returncode == 0
    assert cache_entries(cache) == {}
    _, report = run(project)
    assert set(statuses(report).values()) == {"success"}


def test_concurrent_runs_leave_one_valid_entry(tmp_path: Path) -> None:
    """Three checkouts (CI jobs) sharing one cache directory store the same keys at once."""
    shared = tmp_path / "shared-cache"
    roots = []
    for i in range(3):
        root = tmp_path / f"job{i}"
        root.mkdir()
        roots.append(make_project(root))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTEST_")}
    env.update(PYTHONPATH=str(REPO), ATTEST_CACHE_DIR=str(shared))
    procs = [subprocess.Popen([sys.executable, "-m", "attest_cli", "run", "-q"], cwd=root,
                              env={**env, "XDG_CONFIG_HOME": str(root / ".xdg")},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for root in roots]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert len(cache_entries(shared)) == 3
    assert not list(shared.rglob(".*.tmp")) and not (shared / "entries").exists()
    verify = attest("cache", "verify", cwd=roots[0], env={"ATTEST_CACHE_DIR": str(shared)})
    assert verify.returncode == 0, verify.stdout
    assert "3 entries checked, 0 with problems" in verify.stdout
    for root in roots:
        _, report = run(root, env={"ATTEST_CACHE_DIR": str(shared)})
        assert set(statuses(report).values()) == {"cached"}


def test_key_is_stable_whatever_the_order_of_env_maps(tmp_path: Path) -> None:
    one = make_project(tmp_path / "one" if (tmp_path / "one").mkdir() is None else tmp_path)
    two_root = tmp_path / "two"
    two_root.mkdir()
    swapped = PIPELINE.replace('env: {MODE: "release", LEVEL: "3"}',
                               'env: {LEVEL: "3", MODE: "release"}')
    make_project(two_root, swapped)
    keys = []
    for root in (one, two_root):
        out = attest("cache", "explain", "gen", "--format", "json", cwd=root)
        assert out.returncode == 0, out.stderr
        keys.append(json.loads(out.stdout)["key"])
    assert keys[0] == keys[1]
    changed = tmp_path / "three"
    changed.mkdir()
    make_project(changed, PIPELINE.replace('LEVEL: "3"', 'LEVEL: "4"'))
    out = attest("cache", "explain", "gen", "--format", "json", cwd=changed)
    assert json.loads(out.stdout)["key"] != keys[0]


UNDECLARED = """
name: flavours
steps:
  bake:
    run: mkdir -p .count && echo x >> .count/bake && echo "$FLAVOR" > flavor.txt
    outputs: [flavor.txt]
    {extra}
"""


def test_undeclared_variable_is_not_in_the_key_and_is_warned_about(project: Path) -> None:
    write_pipeline(project, UNDECLARED.format(extra=""))
    proc, _ = run(project, env={"FLAVOR": "vanilla"})
    assert "uses $FLAVOR, which is not part of its cache key" in proc.stderr
    _, report = run(project, env={"FLAVOR": "chocolate"})
    # the documented stale hit: the variable was never declared
    assert statuses(report) == {"bake": "cached"}
    assert (project / "flavor.txt").read_text() == "vanilla\n"


def test_declared_cache_env_variable_is_in_the_key(project: Path) -> None:
    write_pipeline(project, UNDECLARED.format(extra="cache_env: [FLAVOR]"))
    proc, _ = run(project, env={"FLAVOR": "vanilla"})
    assert "not part of its cache key" not in proc.stderr
    _, report = run(project, env={"FLAVOR": "chocolate"})
    assert statuses(report) == {"bake": "success"}
    assert step(report, "bake")["cache_miss_reason"] == "env FLAVOR changed"
    assert (project / "flavor.txt").read_text() == "chocolate\n"
    _, report = run(project, env={"FLAVOR": "vanilla"})
    assert statuses(report) == {"bake": "cached"}
    assert (project / "flavor.txt").read_text() == "vanilla\n"


def test_secret_values_and_excluded_variables_stay_out_of_the_key(project: Path) -> None:
    write_pipeline(project, UNDECLARED.format(
        extra="cache_env: [FLAVOR, TOKEN, BUILD_ID]\n    cache_exclude_env: [BUILD_ID]\n"
              "    secrets: [TOKEN]"))
    run(project, env={"FLAVOR": "v", "TOKEN": "s3cr3t-one", "BUILD_ID": "1"})
    _, report = run(project, env={"FLAVOR": "v", "TOKEN": "s3cr3t-two", "BUILD_ID": "2"})
    assert statuses(report) == {"bake": "cached"}
    out = attest("cache", "explain", "bake", "--format", "json", cwd=project,
                 env={"FLAVOR": "v", "TOKEN": "s3cr3t-two"})
    components = json.loads(out.stdout)["components"]
    assert "env:FLAVOR" in components
    assert "env:TOKEN" not in components and "env:BUILD_ID" not in components


def test_input_edited_while_the_step_runs_is_not_stored(project: Path) -> None:
    write_pipeline(project, """
        name: racy
        steps:
          edit:
            run: >-
              mkdir -p .count && echo x >> .count/edit && cp in.txt out.txt &&
              echo more >> in.txt
            inputs: [in.txt]
            outputs: [out.txt]
        """)
    (project / "in.txt").write_text("one\n")
    proc, report = run(project)
    assert "not cached: input in.txt changed while the step ran" in proc.stderr
    assert step(report, "edit")["output_digest"] is None
    assert cache_entries(project / ".attest" / "cache") == {}
    _, report = run(project)
    assert statuses(report) == {"edit": "success"}


def test_step_without_inputs_is_cached_on_command_env_and_upstream_outputs(project: Path
                                                                           ) -> None:
    make_project(project)
    run(project)
    explain = attest("cache", "explain", "final", cwd=project)
    assert explain.returncode == 0, explain.stderr
    assert "needs:gen" in explain.stdout and "needs:other" in explain.stdout
    assert "next run: hit" in explain.stdout
    (project / "out" / "a.txt").write_text("tampered\n")  # gen's output changed on disk
    explain = attest("cache", "explain", "final", cwd=project)
    assert "output of needed step 'gen' changed (blake3:" in explain.stdout
    assert "next run: miss" in explain.stdout
    data = json.loads(attest("cache", "explain", "final", "--format", "json",
                             cwd=project).stdout)
    [change] = data["changes"]
    assert change["component"] == "needs:gen" and change["before"] != change["now"]
    assert data["components"]["needs:gen"] == change["now"] and data["would_hit"] is False


def test_cache_commands_stats_clear_and_prune(project: Path) -> None:
    make_project(project)
    run(project)
    run(project)
    stats = attest("cache", "stats", "--format", "json", cwd=project)
    assert stats.returncode == 0, stats.stderr
    local = json.loads(stats.stdout)["backends"][0]
    assert local["backend"] == "local" and local["entries"] == 3 and local["bytes"] > 0
    assert (local["hits"], local["misses"], local["hit_rate"]) == (3, 3, 0.5)
    table = attest("cache", "stats", cwd=project)
    assert "50.0%" in table.stdout
    pruned = attest("cache", "prune", cwd=project, env={"ATTEST_CACHE__MAX_SIZE": "1"})
    assert pruned.returncode == 0, pruned.stderr
    assert "local: removed 3 entries" in pruned.stdout
    _, report = run(project)
    assert statuses(report)["gen"] == "success"
    cleared = attest("cache", "clear", cwd=project)
    assert cleared.returncode == 0 and "local: removed" in cleared.stdout
    assert cache_entries(project / ".attest" / "cache") == {}


def test_explain_unknown_step_is_a_usage_error(project: Path) -> None:
    make_project(project)
    out = attest("cache", "explain", "gne", cwd=project)
    assert out.returncode == 2
    assert "no step 'gne'" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("value", ["zstd"])
def test_zstd_compression_round_trips(project: Path, value: str) -> None:
    pytest.importorskip("zstandard")
    make_project(project)
    env = {"ATTEST_CACHE__COMPRESSION": value}
    run(project, env=env)
    assert list((project / ".attest" / "cache" / "blobs").rglob("*.zst"))
    (project / "out" / "a.txt").unlink()
    _, report = run(project, env=env)
    assert set(statuses(report).values()) == {"cached"}
    assert (project / "out" / "a.txt").read_text() == "alpha\n"


def test_least_recently_used_entries_are_evicted_first(tmp_path: Path) -> None:
    from attest_cli.cache import store as entries
    from attest_cli.cache.backends.local import LocalBackend
    from attest_cli.cache.maintenance import prune
    from attest_cli.cache.manifest import Manifest, OutputFile
    from attest_cli.digest import bytes_digest

    local = LocalBackend(tmp_path / "cache")
    now = 1_000_000.0
    for i, key in enumerate(["old", "middle", "recent"]):
        data = bytes([i]) * 1000
        digest = bytes_digest(data)
        entries.put_blob(local, digest, data)
        entries.put_manifest(local, Manifest(
            key=key, step="s", files=[OutputFile(path="f", kind="file", mode=0o644,
                                                 digest=digest, size=len(data))],
            log_digest=digest, log_size=0))
        os.utime(local.root / entries.blob_key(digest), (now - 100 + i, now - 100 + i))
        local.close()
        write_cache_entry(local.root, key, None, used=now - 100 + i)
    size = local.size()
    result = prune(local, max_size=size - 1, retention_days=0, now=now)
    assert result.entries_removed == 1
    assert sorted(entries.entry_keys(local)) == ["middle", "recent"]
    result = prune(local, max_size=None, retention_days=1, now=now + 86400 - 98.5)
    assert sorted(entries.entry_keys(local)) == ["recent"]


def test_run_over_the_size_limit_evicts_and_still_succeeds(project: Path) -> None:
    make_project(project)
    _, report = run(project, env={"ATTEST_CACHE__MAX_SIZE": "1"})
    assert report["status"] == "success"
    assert cache_entries(project / ".attest" / "cache") == {}
