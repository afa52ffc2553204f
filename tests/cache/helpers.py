"""Helpers of the cache tests: the demo project, running it, reading its report back."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

from tests.support import attest, write_pipeline

PIPELINE = """
name: cachetest
env: {MODE: "release", LEVEL: "3"}
steps:
  gen:
    run: >-
      mkdir -p .count && echo x >> .count/gen && mkdir -p out/empty out/bin &&
      cp src/a.txt out/a.txt && printf '#!/bin/sh\\necho hi\\n' > out/bin/run.sh &&
      chmod 755 out/bin/run.sh && chmod 700 out/empty && ln -sf a.txt out/link.txt &&
      echo generated gen
    inputs: [src/a.txt]
    outputs: [out/]
  other:
    run: mkdir -p .count && echo x >> .count/other && cat src/b.txt > other.txt && echo made other
    inputs: ["src/**/b.txt"]
    outputs: [other.txt]
  final:
    run: mkdir -p .count && echo x >> .count/final && cat out/a.txt other.txt > final.txt
    needs: [gen, other]
    outputs: [final.txt]
"""


def make_project(root: Path, text: str = PIPELINE) -> Path:
    (root / "src").mkdir(exist_ok=True)
    (root / "src" / "a.txt").write_text("alpha\n")
    (root / "src" / "b.txt").write_text("beta\n")
    write_pipeline(root, text)
    return root


def runs(root: Path, step: str) -> int:
    path = root / ".count" / step
    return len(path.read_text().splitlines()) if path.exists() else 0


def run(root: Path, *args: str, env: dict[str, str] | None = None, ok: bool = True
        ) -> tuple[subprocess.CompletedProcess[str], dict]:
    report = root / ".attest" / "test-report.json"
    report.unlink(missing_ok=True)
    proc = attest("run", "--log-format", "json", "--report", str(report), *args, cwd=root,
                  env=env)
    if ok:
        assert proc.returncode == 0, proc.stderr
    data = json.loads(report.read_text()) if report.exists() else {}
    return proc, data


def statuses(report: dict) -> dict[str, str]:
    return {s["name"]: s["status"] for s in report["steps"]}


def step(report: dict, name: str) -> dict:
    return next(s for s in report["steps"] if s["name"] == name)


def log_events(stderr: str, message: str) -> list[dict]:
    out = []
    for line in stderr.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if doc.get("message") == message:
            out.append(doc)
    return out


def snapshot(root: Path, rels: list[str]) -> dict[str, tuple]:
    out = {}
    for rel in rels:
        p = root / rel
        st = p.lstat()
        if stat.S_ISLNK(st.st_mode):
            out[rel] = ("link", os.readlink(p))
        elif stat.S_ISDIR(st.st_mode):
            out[rel] = ("dir", stat.S_IMODE(st.st_mode))
        else:
            out[rel] = ("file", stat.S_IMODE(st.st_mode), p.read_bytes())
    return out



# an empty regular file, not /dev/null: botocore reads these files as documents, and a
# device there is what the hardening work refuses elsewhere
_EMPTY = str(Path(__file__).resolve().parent.parent / "data" / "aws-empty-config")
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": _EMPTY,
           "AWS_SHARED_CREDENTIALS_FILE": _EMPTY}


def with_section(section: str) -> str:
    return PIPELINE.replace("name: cachetest\n", "name: cachetest\n" + section)


def forget_locally(root: Path) -> None:
    """A fresh machine: no local tier, no outputs - only the remote has the entries."""
    shutil.rmtree(root / ".attest" / "cache")
    for rel in ("out", "other.txt", "final.txt"):
        p = root / rel
        shutil.rmtree(p) if p.is_dir() else p.unlink()

