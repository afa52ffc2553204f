"""The run service and its feature seam (attest_cli/runner/).

Features arrive through the ``attest.run_features`` entry points, attest's own exactly as a
third party's; the service alone decides a run's status; observers get frozen data; one
signal handler; one pipeline hash.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from attest_cli.record import FrozenError
from tests.support import REPO, attest, write_pipeline

PIPELINE = """
    name: app
    steps:
      build: {run: 'echo built > out.txt', outputs: [out.txt]}
      slow: {run: 'sleep 0.3', needs: [build], cache: false}
"""


# -- features through entry points ---------------------------------------------------------
def test_built_in_features_are_entry_points_attached_in_declared_order() -> None:
    from attest_cli.runner.plugins import load_features

    loaded = [f for f in load_features() if f.builtin]
    assert [(f.name, f.order) for f in loaded] == [
        ("cache", 100), ("remote_exec", 150), ("tracing", 200), ("metrics", 300),
        ("attestation", 400), ("junit", 500)]


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/run-feature-plugin pip-installed into a directory of its own."""
    tmp = tmp_path_factory.mktemp("run-feature")
    source = tmp / "run-feature-plugin"
    shutil.copytree(REPO / "examples" / "run-feature-plugin", source)  # pip builds in the tree
    site = tmp / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                          "--target", str(site), str(source)],
                         capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr
    return site


def test_a_pip_installed_third_party_feature_observes_the_run(project: Path,
                                                             plugin_site: Path) -> None:
    write_pipeline(project, PIPELINE)
    proc = attest("run", cwd=project, env={"PYTHONPATH": f"{plugin_site}:{REPO}",
                                           "ATTEST_RUN_SUMMARY": "summary.json"})
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((project / "summary.json").read_text())
    assert summary["status"] == "success" and summary["exit_code"] == 0
    assert summary["steps"] == {"build": "success", "slow": "success"}
    assert summary["events"]["StepFinished"] == 2
    assert summary["events"]["RunStarted"] == summary["events"]["RunFinished"] == 1
    assert summary["failures"] == []


def test_a_third_party_feature_fails_the_run_with_a_reason_in_the_report(
        project: Path, plugin_site: Path) -> None:
    write_pipeline(project, PIPELINE)
    proc = attest("run", "--report", "report.json", cwd=project,
                  env={"PYTHONPATH": f"{plugin_site}:{REPO}",
                       "ATTEST_RUN_SUMMARY": "summary.json", "ATTEST_RUN_SUMMARY_BUDGET": "0.2"})
    assert proc.returncode == 1, proc.stderr
    report = json.loads((project / "report.json").read_text())
    assert report["status"] == "failure" and report["exit_code"] == 1
    assert report["failures"] == ["run-summary: over the 0.2s budget: slow"]
    assert [s["status"] for s in report["steps"]] == ["success", "success"]
    # the observer sees the decided status, once
    assert json.loads((project / "summary.json").read_text())["status"] == "failure"


def test_a_run_feature_that_fails_to_load_is_one_warning(project: Path,
                                                         tmp_path: Path) -> None:
    dist = tmp_path / "site" / "broken_feature-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-feature\n"
                                   "Version: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[attest.run_features]\nbroken = no_such_module_anywhere:Feature\n")
    write_pipeline(project, PIPELINE)
    proc = attest("run", "--log-format", "text", cwd=project,
                  env={"PYTHONPATH": f"{tmp_path / 'site'}:{REPO}"})
    assert proc.returncode == 0, proc.stderr
    warnings = [ln for ln in proc.stderr.splitlines() if "failed to load" in ln]
    assert len(warnings) == 1 and "no_such_module_anywhere" in warnings[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_feature_installed_after_a_run_is_attached_by_the_next(project: Path, tmp_path: Path,
                                                                  plugin_site: Path) -> None:
    """The entry points kept between runs are read again once a distribution is added."""
    site = tmp_path / "site"
    site.mkdir()
    env = {"PYTHONPATH": f"{site}:{REPO}", "ATTEST_RUN_SUMMARY": "summary.json"}
    write_pipeline(project, PIPELINE)
    assert attest("run", cwd=project, env=env).returncode == 0
    assert not (project / "summary.json").exists()
    for item in plugin_site.iterdir():  # as `pip install --target site` would
        (shutil.copytree if item.is_dir() else shutil.copy2)(item, site / item.name)
    proc = attest("run", cwd=project, env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((project / "summary.json").read_text())["status"] == "success"
    # and once it is removed, the next run neither attaches it nor warns
    for item in plugin_site.iterdir():
        (shutil.rmtree if item.is_dir() else os.remove)(site / item.name)
    (project / "summary.json").unlink()
    proc = attest("run", "--log-format", "text", cwd=project, env=env)
    assert proc.returncode == 0, proc.stderr
    assert not (project / "summary.json").exists() and "run-summary" not in proc.stderr


# modules a cached re-run of a plain pipeline has no use for, and what each cost to import
UNUSED_ON_A_CACHED_RUN = {
    "importlib.metadata": "~10 ms: the run features' entry points are kept between runs",
    "yaml": "~10 ms: the pipeline's parse is kept between runs, and no config file exists",
    "_hashlib": "~3 ms (OpenSSL): run ids and temp names need only os.urandom",
    "attest_cli.cache.maintenance": "~1 ms: cache upkeep is due once a day",
    "attest_cli.tracing.config": "~1 ms: tracing is off, and no OTLP header variable is set",
    "tempfile": "~1 ms with random: atomic writes name their temp files from os.urandom",
}


def test_a_cached_rerun_loads_no_module_it_does_not_use(project: Path) -> None:
    """What the second run of an unchanged pipeline imports (start-up is most of its time)."""
    write_pipeline(project, PIPELINE)
    code = ("import sys\n"
            "from attest_cli.cli.entry import main\n"
            "try:\n    main(['-q', 'run'])\nexcept SystemExit as exc:\n"
            "    assert exc.code == 0, exc.code\n"
            f"print(sorted(set({sorted(UNUSED_ON_A_CACHED_RUN)!r}) & set(sys.modules)))\n")
    read = [subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True,
                           text=True, timeout=60) for _ in range(2)]
    assert "importlib.metadata" in read[0].stdout, read[0].stderr  # the first run reads them
    assert read[1].stdout.strip() == "[]", read[1].stderr
    # `python -m attest_cli` has another sys.path: its list is kept beside, not instead
    assert attest("run", cwd=project).returncode == 0
    again = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True,
                           text=True, timeout=60)
    assert again.stdout.strip() == "[]", again.stderr
    from attest_cli.metrics.history import HistoryDB  # the metrics feature recorded both

    assert len(HistoryDB(project / ".attest" / "history.db").runs()) == 4
    # a kept list that does not parse is a miss: read again and rewritten
    kept = Path(os.environ["XDG_CACHE_HOME"]) / "attest" / "entry-points.json"
    assert not (project / ".attest" / "entry-points.json").exists()  # never in the project
    assert stat.S_IMODE(kept.parent.stat().st_mode) == 0o700
    kept.write_text("{not json")
    assert attest("run", cwd=project).returncode == 0
    names = [name for name, _ in json.loads(kept.read_text())["lists"][0]["entry_points"]]
    assert {"cache", "tracing", "metrics", "attestation", "junit"} <= set(names)


def test_a_kept_entry_point_list_that_is_not_a_regular_file_is_a_miss(project: Path) -> None:
    """Like every file attest reads: a FIFO in its place is never waited on."""
    write_pipeline(project, PIPELINE)
    kept = Path(os.environ["XDG_CACHE_HOME"]) / "attest"
    kept.mkdir(parents=True)
    os.mkfifo(kept / "entry-points.json")
    proc = attest("run", cwd=project, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert (project / ".attest" / "history.db").exists()  # the features were attached


def test_help_reads_no_feature_entry_points(project: Path) -> None:
    code = ("import sys, importlib.metadata as md\n"
            "calls = []\n"
            "real = md.entry_points\n"
            "md.entry_points = lambda **kw: calls.append(kw) or real(**kw)\n"
            "from attest_cli.cli.entry import main\n"
            "sys.argv = ['attest', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "assert not [c for c in calls if c.get('group') == 'attest.run_features'], calls\n"
            "assert 'attest_cli.runner.plugins' not in sys.modules\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


# -- one status decision -------------------------------------------------------------------
@pytest.mark.parametrize(("steps", "interrupted", "failures", "expect"), [
    (["success", "cached"], None, [], ("success", 0)),
    (["success", "failure"], None, [], ("failure", 1)),
    (["success", "skipped"], None, [], ("failure", 1)),
    (["success"], None, ["cache.required: redis failed"], ("failure", 1)),
    (["failure"], 15, ["anything"], ("interrupted", 143)),
])
def test_one_function_decides_the_status(steps: list[str], interrupted: int | None,
                                         failures: list[str], expect: tuple[str, int]) -> None:
    from attest_cli.engine.run_report import StepResult
    from attest_cli.runner.service import decide_status

    results = [StepResult(name=f"s{i}", command="true", status=s) for i, s in enumerate(steps)]
    assert decide_status(results, interrupted, failures) == expect


# -- frozen events -------------------------------------------------------------------------
def test_observers_get_frozen_reports_and_step_results_never_change_after_publication(
        project: Path) -> None:
    from attest_cli.context import AppContext
    from attest_cli.engine.events import Event, RunFinished, RunStarted, StepFinished
    from attest_cli.runner.features import RunOptions
    from attest_cli.runner.service import execute

    write_pipeline(project, PIPELINE)
    seen: list[Event] = []
    published: dict[str, dict[str, object]] = {}

    def view(event: Event) -> None:
        seen.append(event)
        if isinstance(event, StepFinished):
            published[event.result.name] = dict(event.result.__dict__)

    ctx = AppContext(workdir=project, environ={"PATH": os.environ["PATH"]})
    report = execute(ctx, RunOptions(), view=view)
    assert report.status == "success"
    started = next(e for e in seen if isinstance(e, RunStarted))
    finished = next(e for e in seen if isinstance(e, RunFinished))
    for snap in (started.report, finished.report):
        with pytest.raises(FrozenError):
            snap.status = "failure"
    with pytest.raises(FrozenError):
        finished.report.steps[0].status = "failure"
    assert started.report.status == "running" and started.report.steps == ()
    assert finished.report.status == "success"
    # what observers were handed is what the run recorded: nothing changed it afterwards
    for step in report.steps:
        assert published[step.name] == step.__dict__, step.name
    assert report.step("slow").needs == ["build"]


# -- one signal handler --------------------------------------------------------------------
def test_routed_signals_reach_the_handler_and_the_previous_handlers_come_back() -> None:
    from attest_cli.errors import Interrupted
    from attest_cli.runner.signals import StopRequest, routed

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    got: list[int] = []
    with routed(got.append) as active:
        assert active
        os.kill(os.getpid(), signal.SIGTERM)
    assert got == [signal.SIGTERM]
    assert {s: signal.getsignal(s) for s in before} == before
    with pytest.raises(Interrupted) as info, StopRequest(check_on_exit=True) as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.stopped.is_set() and stop.signum == signal.SIGINT
    assert info.value.signum == signal.SIGINT
    assert {s: signal.getsignal(s) for s in before} == before


def test_signals_are_not_routed_off_the_main_thread() -> None:
    from attest_cli.runner.signals import routed

    out: list[bool] = []

    def worker() -> None:
        with routed(lambda _s: None) as active:
            out.append(active)
    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert out == [False]


# -- one pipeline hash ---------------------------------------------------------------------
def test_receipts_and_benchmarks_hash_the_pipeline_the_same_way(project: Path) -> None:
    write_pipeline(project, """
        name: app
        env: {GREETING: "héllo"}
        steps:
          a: {run: 'echo "$GREETING" > o.txt', outputs: [o.txt], timeout: 30}
    """)
    proc = attest("run", "--sign", "--output", "receipt.yaml", cwd=project)
    assert proc.returncode == 0, proc.stderr
    receipt = yaml.safe_load((project / "receipt.yaml").read_text())
    proc = attest("benchmark", "pipeline", "-n", "2", "-w", "0", "-l", "x", "-o", "b.json",
                  cwd=project, timeout=120)
    assert proc.returncode == 0, proc.stderr
    bench = json.loads((project / "b.json").read_text())
    assert bench["pipeline"]["hash"] == receipt["pipeline_hash"]
    assert receipt["pipeline_hash"].startswith("blake3:")


def test_a_run_that_raises_is_decided_failure_once_and_every_observer_hears_it(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from attest_cli.context import AppContext
    from attest_cli.engine.events import Event, RunFinished
    from attest_cli.metrics.history import HistoryDB
    from attest_cli.runner import service
    from attest_cli.runner.features import RunContext, RunOptions
    from attest_cli.runner.plugins import LoadedFeature

    class Exploding:
        name, order = "exploding", 999

        def attach(self, run: RunContext) -> None:
            def boom(_report: object) -> None:
                raise RuntimeError("the disk went away")
            run.before_finish(boom)

    real = service.load_features
    monkeypatch.setattr(service, "load_features", lambda **kw: [
        *real(**kw), LoadedFeature(name="exploding", order=999, feature=Exploding(), builtin=True)])
    write_pipeline(project, PIPELINE)
    seen: list[Event] = []
    ctx = AppContext(workdir=project, environ={"PATH": os.environ["PATH"]})
    with pytest.raises(RuntimeError, match="the disk went away"):
        service.execute(ctx, RunOptions(), view=seen.append)
    finished = [e for e in seen if isinstance(e, RunFinished)]
    assert len(finished) == 1 and finished[0].report.status == "failure"
    assert finished[0].report.failures == ("the run stopped on an error: the disk went away",)
    (record,) = HistoryDB(project / ".attest" / "history.db").runs()
    assert record.status == "failure" and record.finished_at is not None
    (path,) = (project / ".attest" / "runs").glob("*.json")
    saved = json.loads(path.read_text())
    assert saved["status"] == "failure" and saved["exit_code"] == 1


def test_a_third_party_feature_whose_attach_raises_is_a_warning(
        project: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from attest_cli.context import AppContext
    from attest_cli.errors import UsageError
    from attest_cli.runner import service
    from attest_cli.runner.features import Feature, RunContext, RunOptions
    from attest_cli.runner.plugins import LoadedFeature

    def broken(run: RunContext) -> None:
        run.subscribe(lambda _e: pytest.fail("a feature that failed to attach observed"))
        run.fail("a feature that failed to attach decided")
        raise RuntimeError("bad plug-in")

    def strict(_run: RunContext) -> None:
        raise UsageError("--thing: bad value")

    real = service.load_features
    extra = [LoadedFeature("broken", 1000, Feature("broken", 1000, broken), builtin=False)]
    monkeypatch.setattr(service, "load_features", lambda **kw: [*real(**kw), *extra])
    write_pipeline(project, PIPELINE)
    ctx = AppContext(workdir=project, environ={"PATH": os.environ["PATH"]})
    with caplog.at_level("WARNING", logger="attest"):
        assert service.execute(ctx, RunOptions()).status == "success"
    assert [r.getMessage() for r in caplog.records if "broken" in r.getMessage()] == [
        "run feature broken failed to attach and is skipped: bad plug-in"]
    # a usage error is meant: it stops the run before any step, whoever raises it
    extra[:] = [LoadedFeature("strict", 1000, Feature("strict", 1000, strict), builtin=False)]
    with pytest.raises(UsageError):
        service.execute(ctx, RunOptions())


def test_the_user_cache_directory_follows_the_xdg_specification() -> None:
    from attest_cli.runner.plugins import user_cache_dir

    assert user_cache_dir({"XDG_CACHE_HOME": "/c", "HOME": "/h"}) == Path("/c/attest")
    assert user_cache_dir({"HOME": "/h"}) == Path("/h/.cache/attest")
    # a relative XDG_CACHE_HOME is invalid (the specification): ignored
    assert user_cache_dir({"XDG_CACHE_HOME": "rel", "HOME": "/h"}) == Path("/h/.cache/attest")
    assert user_cache_dir({}) is None  # no home: nothing is kept


def test_steps_stored_off_the_event_loop_are_cached_like_the_others(project: Path) -> None:
    """Outputs that may be large (a directory, a glob, over 1 MiB) are stored on a thread of
    their own while the loop serves the other steps; the run ends with every entry stored."""
    write_pipeline(project, """
        name: big
        steps:
          tree: {run: "mkdir -p d && echo a > d/a && echo b > d/b", outputs: [d]}
          blob: {run: "head -c 3000000 /dev/zero > big.bin", outputs: [big.bin]}
          globbed: {run: "echo g > g1.txt && echo g > g2.txt", outputs: ["g*.txt"]}
          small: {run: "sleep 0.2 && echo s > s.txt", outputs: [s.txt]}
    """)
    first = attest("run", "-j4", "--report", "r1.json", cwd=project)
    assert first.returncode == 0, first.stderr
    steps = json.loads((project / "r1.json").read_text())["steps"]
    assert {s["name"]: s["status"] for s in steps} == dict.fromkeys(
        ("tree", "blob", "globbed", "small"), "success")
    assert all(s["output_digest"] for s in steps)  # stored: each has its outputs' digest
    shutil.rmtree(project / "d")
    (project / "big.bin").unlink()
    second = attest("run", "-j4", "--report", "r2.json", cwd=project)
    assert second.returncode == 0, second.stderr
    again = json.loads((project / "r2.json").read_text())["steps"]
    assert {s["name"]: s["status"] for s in again} == dict.fromkeys(
        ("tree", "blob", "globbed", "small"), "cached")
    assert (project / "d" / "b").read_text() == "b\n"
    assert (project / "big.bin").stat().st_size == 3_000_000


@pytest.mark.skipif(os.geteuid() != 0, reason="needs a directory of another user")
def test_the_entry_point_list_is_never_kept_in_another_users_directory(tmp_path: Path) -> None:
    from attest_cli.runner import plugins

    theirs = tmp_path / "home"
    theirs.mkdir()
    os.chown(theirs, 65534, 65534)
    plugins._write(theirs / ".cache" / "attest" / "entry-points.json", [])
    assert not (theirs / ".cache").exists()
    mine = tmp_path / "mine"
    plugins._write(mine / ".cache" / "attest" / "entry-points.json", [])
    assert (mine / ".cache" / "attest" / "entry-points.json").exists()


def test_a_large_hit_that_turns_out_corrupt_runs_its_command_after_all(project: Path) -> None:
    """A hit too large to restore on the event loop is restored on a thread; if its blob
    is then found corrupt, the step goes back to the loop and runs."""
    write_pipeline(project, """
        name: big
        steps:
          blob: {run: "head -c 3000000 /dev/zero > big.bin && echo ran >> runs.log",
                 outputs: [big.bin]}
          other: {run: "sleep 0.2", cache: false}
    """)
    assert attest("run", "-j2", cwd=project).returncode == 0
    blobs = [p for p in (project / ".attest" / "cache" / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == 1 and blobs[0].stat().st_size == 3_000_000
    blobs[0].write_bytes(b"\1" * 3_000_000)  # same size, wrong digest
    (project / "big.bin").unlink()
    proc = attest("run", "-j2", "--report", "r.json", cwd=project)
    assert proc.returncode == 0, proc.stderr
    steps = {s["name"]: s for s in json.loads((project / "r.json").read_text())["steps"]}
    assert steps["blob"]["status"] == "success"  # ran again, not restored
    assert (project / "runs.log").read_text() == "ran\nran\n"
    assert (project / "big.bin").read_bytes() == b"\0" * 3_000_000


def test_an_interrupt_in_one_closer_still_runs_the_others(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second Ctrl-C while a run shuts down (signals are no longer routed then) stops
    the closer it lands in, not the ones after it: the cache still writes and syncs its
    entries; the interrupt is raised once every closer has run."""
    from attest_cli.context import AppContext
    from attest_cli.runner import service
    from attest_cli.runner.features import Feature, RunContext, RunOptions
    from attest_cli.runner.plugins import LoadedFeature
    from tests.support import cache_entries

    closed: list[str] = []

    def interrupted_closer(run: RunContext) -> None:
        def close() -> None:
            closed.append("interrupted")
            raise KeyboardInterrupt

        run.on_close(lambda: closed.append("first registered"))
        run.on_close(close)  # runs first: closers run in reverse order

    real = service.load_features
    extra = [LoadedFeature("late", 1000, Feature("late", 1000, interrupted_closer),
                           builtin=False)]
    monkeypatch.setattr(service, "load_features", lambda **kw: [*real(**kw), *extra])
    write_pipeline(project, PIPELINE)
    ctx = AppContext(workdir=project, environ={"PATH": os.environ["PATH"]})
    with pytest.raises(KeyboardInterrupt):
        service.execute(ctx, RunOptions())
    assert closed == ["interrupted", "first registered"]
    assert len(cache_entries(project / ".attest" / "cache")) == 1  # build's entry, written
