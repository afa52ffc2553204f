"""The files ``attest init`` writes: a small, working pipeline and a commented config."""

from __future__ import annotations

from pathlib import Path

from attest_cli.atomic import write_atomic
from attest_cli.errors import UsageError

SAMPLE_PIPELINE = """\
version: "0.1"
name: sample
env:
  GREETING: hello
steps:
  prepare:
    run: mkdir -p build && echo "$GREETING from attest" > build/greeting.txt
    outputs: [build/greeting.txt]
  check:
    run: grep -q attest build/greeting.txt && echo "greeting ok"
    needs: [prepare]
    inputs: [build/greeting.txt]
  report:
    run: wc -c build/greeting.txt
    needs: [check]
    inputs: [build/greeting.txt]
"""

SAMPLE_CONFIG = """\
# Project configuration of attest (see `attest config list` for every key).
log_level: info
cache:
  backend: local
  max_size: 10GB
monitoring:
  prometheus:
    enabled: false
    endpoint: ":9090"
    path: "/metrics"
    namespace: "attest"
tracing:
  enabled: false
"""


def write_scaffold(root: Path, *, force: bool = False) -> list[Path]:
    targets = {root / "attest.yaml": SAMPLE_PIPELINE,
               root / ".attest" / "config.yaml": SAMPLE_CONFIG}
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        names = ", ".join(str(p.relative_to(root)) for p in existing)
        raise UsageError(f"{names} already exist(s); use --force to overwrite")
    for path, text in targets.items():
        write_atomic(path, text)
    return list(targets)
