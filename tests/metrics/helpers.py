"""Helpers of the metrics tests: start and stop attest, scrape, read the history back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tests.support import attest, require_binary, wait_for, write_pipeline


def clean_env(project: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATTEST_", "OTEL_"))}
    env.pop("CI", None)
    env["XDG_CONFIG_HOME"] = str(project / ".xdg")
    env.update(extra or {})
    return env


def start_attest(project: Path, *args: str, env: dict[str, str] | None = None
                 ) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "attest_cli", *args], cwd=project,
                            env=clean_env(project, env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return out, err


def interrupted_run(project: Path, env: dict[str, str] | None = None) -> int:
    """Start ``attest run``, SIGINT it once a step has touched ``started``; its exit code."""
    proc = start_attest(project, "run", env=env)
    assert wait_for(lambda: (project / "started").exists(), 30), stop(proc)
    proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=60)
    finally:
        stop(proc)
    return int(proc.returncode)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` -> value, labels in sorted order, for exact assertions."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}"] = s.value
    return out


def promtool_check_metrics(text: str) -> None:
    promtool = require_binary("promtool")
    proc = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def history_runs(project: Path) -> list[dict]:
    proc = attest("history", "--format", "json", "--limit", "1000", cwd=project)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def cache_counts(project: Path, backend: str = "local") -> tuple[int, int]:
    """Hits and misses the run history recorded (what the cache reported, run by run)."""
    runs = history_runs(project)
    return (sum(r["cache"].get(backend, {}).get("hits", 0) for r in runs),
            sum(r["cache"].get(backend, {}).get("misses", 0) for r in runs))


def executed(project: Path, step: str, status: str) -> int:
    """Runs in which ``step`` really executed (not replayed) with ``status``."""
    return sum(1 for r in history_runs(project) for s in r["steps"]
               if s["name"] == step and s["status"] == status)


PIPELINE = """
    name: demo
    steps:
      build:
        run: 'cat src.txt > out.txt'
        inputs: [src.txt]
        outputs: [out.txt]
      test:
        run: 'test -z "$FAIL"'
        needs: [build]
        cache: false
"""



def live_pipeline(project: Path, name: str, port: int) -> None:
    """A pipeline with the live endpoint on ``port`` and a step that waits for a ``go`` file,
    so a test can scrape while the run is in progress."""
    write_pipeline(project, f"""
        name: {name}
        monitoring:
          prometheus:
            enabled: true
            endpoint: "127.0.0.1:{port}"
        steps:
          first: {{run: 'true'}}
          wait:
            run: 'while [ ! -f go ]; do sleep 0.05; done'
            needs: [first]
            cache: false
    """)
