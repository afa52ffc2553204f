"""``attest run --dry-run`` predicts the cache: per step, restored (from which tier) or run.

Every test stores real entries with a real run first, and checks the prediction against
what the next real run then does; a dry run must leave the project byte-for-byte alone.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import (
    attest,
    cache_entries,
    delete_cache_entry,
    entry_of_step,
    write_pipeline,
)

PIPELINE = """
name: drydemo
steps:
  gen_a: {run: "cat src/a.py > a.out", inputs: [src/a.py], outputs: [a.out]}
  gen_b: {run: "cat src/b.py > b.out", inputs: [src/b.py], outputs: [b.out]}
  link: {run: "cat a.out b.out > all.out", needs: [gen_a, gen_b], outputs: [all.out]}
  pack: {run: "cat all.out > pkg.out", needs: [link], outputs: [pkg.out]}
  lint: {run: "echo lint >> lint.count", cache: false}
"""
LINE = re.compile(r"^  \[\d+\] (\S+): .*  -> (.*)$")


def make(root: Path, text: str = PIPELINE) -> Path:
    (root / "src").mkdir(exist_ok=True)
    (root / "src" / "a.py").write_text("a = 1\n")
    (root / "src" / "b.py").write_text("b = 2\n")
    write_pipeline(root, text)
    return root


def tree(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under the project (state directory included): mtime, size, content."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            st = p.stat()
            out[p.relative_to(root).as_posix()] = (st.st_mtime_ns, st.st_size, p.read_bytes())
    return out


def dry_run(root: Path, *args: str) -> tuple[dict[str, str], subprocess.CompletedProcess[str]]:
    """The predictions by step, checking that the dry run changed nothing on disk."""
    before = tree(root)
    proc = attest("run", "--dry-run", *args, cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert tree(root) == before, "a dry run changed files"
    predictions = {}
    for line in proc.stdout.splitlines():
        m = LINE.match(line)
        if m:
            predictions[m.group(1)] = m.group(2)
    return predictions, proc


def real_run(root: Path, *args: str) -> dict[str, str]:
    proc = attest("run", "--report", "report.json", *args, cwd=root)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((root / "report.json").read_text())
    (root / "report.json").unlink()
    return {s["name"]: s["status"] for s in report["steps"]}


def test_first_dry_run_executes_and_records_nothing(project: Path) -> None:
    make(project)
    predictions, proc = dry_run(project)
    assert predictions == {
        "gen_a": "would run: no earlier entry for this step",
        "gen_b": "would run: no earlier entry for this step",
        "link": "would run: upstream 'gen_a' runs first",
        "pack": "would run: upstream 'link' runs first",
        "lint": "would run: cache: false",
    }
    assert proc.stdout.splitlines()[0] == \
        "drydemo: 5 step(s) planned, 5 would run, 0 cached (dry run, nothing executed)"
    assert not (project / ".attest").exists()  # no run report, no history row, no log
    assert not (project / "a.out").exists() and not (project / "lint.count").exists()


def test_changed_input_predicts_exactly_the_downstream_steps(project: Path) -> None:
    make(project)
    real_run(project)
    history = (project / ".attest" / "history.db").read_bytes()
    runs = sorted((project / ".attest" / "runs").iterdir())
    predictions, _ = dry_run(project)
    assert predictions == {"gen_a": "cached (local)", "gen_b": "cached (local)",
                           "link": "cached (local)", "pack": "cached (local)",
                           "lint": "would run: cache: false"}

    (project / "src" / "a.py").write_text("a = 10\n")
    predictions, proc = dry_run(project)
    assert predictions == {
        "gen_a": "would run: input src/a.py changed",
        "gen_b": "cached (local)",
        "link": "would run: upstream 'gen_a' runs first",
        "pack": "would run: upstream 'link' runs first",
        "lint": "would run: cache: false",
    }
    assert "5 step(s) planned, 4 would run, 1 cached" in proc.stdout
    # the existing plan format is kept, the prediction appended
    assert "  [2] link: cat a.out b.out > all.out  needs: gen_a, gen_b  -> would run" \
        in proc.stdout
    assert "  [1] lint: echo lint >> lint.count  (cache off)  -> would run: cache: false" \
        in proc.stdout
    # no run report, no history row from either dry run
    assert sorted((project / ".attest" / "runs").iterdir()) == runs
    assert (project / ".attest" / "history.db").read_bytes() == history
    assert (project / "lint.count").read_text() == "lint\n"

    # the real run does what was predicted
    assert real_run(project) == {"gen_a": "success", "gen_b": "cached", "link": "success",
                                 "pack": "success", "lint": "success"}


def test_json_plan_carries_the_predictions(project: Path) -> None:
    make(project)
    real_run(project)
    (project / "src" / "b.py").write_text("b = 20\n")
    before = tree(project)
    proc = attest("run", "--dry-run", "--format", "json", "--step", "link", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert tree(project) == before
    plan = json.loads(proc.stdout)
    assert (plan["pipeline"], plan["dry_run"], plan["would_run"], plan["cached"]) == \
        ("drydemo", True, 2, 1)
    by_name = {s["name"]: s for s in plan["steps"]}
    assert list(by_name) == ["gen_a", "gen_b", "link"]
    assert by_name["link"]["needs"] == ["gen_a", "gen_b"] and by_name["link"]["level"] == 1
    assert by_name["gen_a"]["prediction"]["status"] == "cached"
    assert by_name["gen_a"]["prediction"]["backend"] == "local"
    assert re.fullmatch(r"[0-9a-f]{64}", by_name["gen_a"]["prediction"]["key"])
    assert by_name["gen_b"]["prediction"]["reason"] == "input src/b.py changed"
    assert by_name["link"]["prediction"] == {"step": "link", "status": "run", "backend": None,
                                             "reason": "upstream 'gen_b' runs first",
                                             "key": None}
    refused = attest("run", "--format", "json", cwd=project)
    assert refused.returncode == 2 and "use it with --dry-run" in refused.stderr
    assert tree(project) == before


def test_restored_upstream_counts_with_the_entry_not_the_disk(project: Path) -> None:
    """A needed step that will be restored: its outputs as restored decide, not a stale disk."""
    make(project)
    real_run(project)
    (project / "a.out").write_text("scribbled over\n")
    (project / "all.out").unlink()
    predictions, _ = dry_run(project)
    assert predictions["gen_a"] == "cached (local)"
    assert predictions["link"] == "cached (local)" and predictions["pack"] == "cached (local)"
    assert real_run(project) == {"gen_a": "cached", "gen_b": "cached", "link": "cached",
                                 "pack": "cached", "lint": "success"}


def test_damaged_local_entry_is_predicted_as_a_run(project: Path) -> None:
    make(project)
    (project / "src" / "b.py").write_text("b = 2\n" * 4000)  # a blob, not held inline
    real_run(project)
    _, manifest = entry_of_step(project / ".attest" / "cache", "gen_b")
    digest = next(f["digest"] for f in manifest["files"] if f["path"] == "b.out")
    hexd = digest.removeprefix("blake3:")
    (project / ".attest" / "cache" / "blobs" / hexd[:2] / hexd).unlink()
    predictions, _ = dry_run(project)
    assert predictions["gen_b"] == "cached (local)"  # b.out on disk is right: no blob needed
    (project / "b.out").unlink()
    predictions, _ = dry_run(project)
    assert predictions["gen_a"] == "cached (local)"
    assert predictions["gen_b"].startswith("would run: ") and \
        "local entry is damaged, a run deletes it (blob " in predictions["gen_b"]
    assert predictions["link"] == "would run: upstream 'gen_b' runs first"
    statuses = real_run(project)
    assert statuses["gen_a"] == "cached" and statuses["gen_b"] == "success"


def test_evicted_entry_no_cache_and_disabled_cache_are_explained(project: Path) -> None:
    make(project)
    real_run(project)
    cache = project / ".attest" / "cache"
    for key in cache_entries(cache):
        delete_cache_entry(cache, key)
    predictions, _ = dry_run(project, "--step", "gen_b")
    assert list(predictions) == ["gen_b"]
    assert predictions["gen_b"].startswith("would run: entry ")
    assert predictions["gen_b"].endswith("is no longer in the cache (evicted or cleared)")

    predictions, _ = dry_run(project, "--no-cache")
    assert set(predictions.values()) == {"would run: --no-cache"}

    write_pipeline(project, "cache: {enabled: false}\n" + PIPELINE.lstrip())
    predictions, _ = dry_run(project)
    assert set(predictions.values()) == {"would run: cache disabled (cache.enabled is false)"}


@pytest.mark.integration
def test_remote_hits_and_a_dead_redis_during_a_dry_run(
        project: Path, redis_server: tuple[int, subprocess.Popen[bytes]]
) -> None:
    port, proc = redis_server
    make(project, f"cache: {{backend: redis, endpoint: '127.0.0.1:{port}', timeout: 1}}\n"
         + PIPELINE.lstrip())
    real_run(project)
    shutil.rmtree(project / ".attest" / "cache")  # a fresh machine: only Redis has entries
    predictions, _ = dry_run(project)
    assert predictions == {"gen_a": "cached (redis)", "gen_b": "cached (redis)",
                           "link": "cached (redis)", "pack": "cached (redis)",
                           "lint": "would run: cache: false"}

    proc.kill()
    proc.wait()
    predictions, out = dry_run(project)
    warnings = [line for line in out.stderr.splitlines() if "WARN" in line]
    assert len(warnings) == 1 and "redis cache unavailable" in warnings[0], out.stderr
    for name in ("gen_a", "gen_b"):
        assert predictions[name].startswith("would run: no earlier entry for this step; "
                                            "redis unavailable ("), predictions[name]
    assert predictions["link"] == "would run: upstream 'gen_a' runs first"
    assert predictions["pack"] == "would run: upstream 'link' runs first"


def test_an_oversized_manifest_is_refused_before_it_is_read(project: Path) -> None:
    """A manifest file claiming 3 GiB (sparse) under a 1 GiB address-space limit: the dry
    run's peek is bounded like every cache read, so it names the entry damaged instead of
    reading it into memory (it used to read the whole file, then parse it)."""
    import resource
    import sys

    make(project)
    real_run(project)
    cache = project / ".attest" / "cache"
    (cache / "entries").mkdir()
    for key in cache_entries(cache):  # each entry as a file of an earlier version, 3 GiB
        with open(cache / "entries" / key, "wb") as fh:
            fh.truncate(3 * 2**30)
        delete_cache_entry(cache, key)

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))

    proc = subprocess.run([sys.executable, "-m", "attest_cli", "run", "--dry-run"],
                          cwd=project, capture_output=True, text=True, timeout=60,
                          preexec_fn=limited)
    assert proc.returncode == 0, proc.stderr
    damaged = [line for line in proc.stdout.splitlines() if "entry is damaged" in line
               and "above the 2000000000-byte limit (cache.max_entry_size)" in line]
    assert len(damaged) == 2, proc.stdout  # gen_a, gen_b; their dependents run after them
