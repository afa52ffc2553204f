"""The files ``attest init`` writes: a small, working pipeline and a commented config."""

from __future__ import annotations

import stat
from pathlib import Path

from attest_cli.atomic import write_atomic
from attest_cli.errors import UsageError
from attest_cli.regularfile import read_regular

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
# attest's own settings may follow as sections: monitoring:, tracing:, cache:, health:
# (`attest config list` shows every key; `attest config validate` checks them).
"""

SAMPLE_CONFIG = """\
# Project configuration of attest: this checkout's overrides, written by
# `attest config set KEY VALUE` (`attest config list` shows every key and its default).
#
# A key set here takes precedence over the same key in attest.yaml's sections
# (monitoring:, tracing:, cache:, health:), so `attest init` sets nothing here:
# settings the whole team shares belong in attest.yaml. `attest config show --origin`
# says which layer set each value; `attest config validate` warns when this file
# overrides attest.yaml.
"""

# The block appended to the project's .gitignore. Everything attest keeps under .attest/
# is per machine (the cache, the run history and reports, logs, receipts, traces,
# profiles, benchmark results) or private (keys/private.key, which must never be
# committed); only the project configuration may be shared.
GITIGNORE_MARKER = "# attest: local state (cache, keys, history, logs, runs, receipts)"
GITIGNORE_BLOCK = f"""\
{GITIGNORE_MARKER}
/.attest/*
!/.attest/config.yaml
"""
# Lines that already keep all of .attest/ out of git: nothing to add.
_ALREADY_IGNORED = {".attest", ".attest/", "/.attest", "/.attest/", ".attest/*", "/.attest/*"}


MAX_GITIGNORE_BYTES = 4 * 1024 * 1024


def write_scaffold(root: Path, *, force: bool = False) -> list[Path]:
    """Write the sample pipeline and project config; append attest's block to .gitignore.

    Returns the files written or changed (a .gitignore that already ignores .attest/ is
    left as it is). Every check comes before the first write.
    """
    targets = {root / "attest.yaml": SAMPLE_PIPELINE,
               root / ".attest" / "config.yaml": SAMPLE_CONFIG}
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        names = ", ".join(str(p.relative_to(root)) for p in existing)
        raise UsageError(f"{names} already exist(s); use --force to overwrite")
    gitignore = root / ".gitignore"
    ignored = with_state_ignored(_read_text(gitignore))
    keep_mode = stat.S_IMODE(gitignore.stat().st_mode) if gitignore.exists() else None
    for path, text in targets.items():
        write_atomic(path, text)
    written = list(targets)
    if ignored is not None:
        write_atomic(gitignore, ignored.encode("utf-8", errors="surrogateescape"),
                     mode=keep_mode, follow_symlinks=True)
        written.append(gitignore)
    return written


def with_state_ignored(text: str) -> str | None:
    """``text`` (a .gitignore) with :data:`GITIGNORE_BLOCK` appended, or None when it has
    the block already or ignores all of .attest/; the user's lines are never rewritten."""
    lines = {line.strip() for line in text.splitlines()}
    if GITIGNORE_MARKER in lines or lines & _ALREADY_IGNORED:
        return None
    if text and not text.endswith("\n"):
        text += "\n"
    return text + ("\n" if text.strip() else "") + GITIGNORE_BLOCK


def _read_text(path: Path) -> str:
    if not path.exists() and not path.is_symlink():
        return ""
    raw = read_regular(path, max_bytes=MAX_GITIGNORE_BYTES, label=str(path),
                       expected="a .gitignore file")
    return raw.decode("utf-8", errors="surrogateescape")
