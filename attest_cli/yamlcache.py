"""YAML parses ``attest run`` keeps beside its state and reuses while a file is unchanged.

The pipeline file's (with what the loader built from it, ``prepared``) and the
configuration files' (``.attest/config.yaml``, the user's, ``--config``): a cached run whose
files are unchanged parses no YAML and does not even import PyYAML (~8 ms).

Building located values from libyaml's event stream is pure Python and cost about a third
of a no-op re-run of a 5,000-step pipeline (~0.3 s, issue 14), while the file itself rarely
changes between runs. ninja keeps ``.ninja_deps`` for the same reason. The entry is keyed by
the BLAKE3 digest of the file's bytes (read anyway, bounded as any YAML file), so an edit,
however small or however its timestamp looks, is a miss; it also names attest's version
and the interpreter's marshal format, so an upgrade never reads an old layout.

The entry is a copy of the file's values, so it must not become a second place a
credential lives in: it is written (or kept) only once the run knows its secrets - the
values of the pipeline's ``secrets`` and every credential in the settings - and only if
none of them occurs in it (:func:`settle`). A pipeline holding a password in a URL is
therefore parsed every time; ``tests/e2e/test_redaction.py`` checks that nothing under
``.attest/`` carries one.

``marshal`` is used because it is the fastest loader of plain values in the standard
library (~10x ``json`` here) and the values are plain (dicts, lists, strings, numbers); a
document holding anything else (a YAML timestamp) is simply not cached. An entry that does
not load, or does not hold exactly the expected shape, is a miss and is rewritten: it is
a cache, never a source of truth, and is written to a temp file then renamed.
"""

from __future__ import annotations

import logging
import marshal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from attest_cli import __version__
from attest_cli.atomic import write_atomic
from attest_cli.digest import bytes_digest
from attest_cli.errors import InputError
from attest_cli.regularfile import read_regular
from attest_cli.yamlfile import MAX_BYTES, LocatedYAML, load_yaml

log = logging.getLogger("attest.pipeline")

_FORMAT = f"attest-parse/3 {__version__} py{sys.version_info[0]}.{sys.version_info[1]} " \
          f"marshal{marshal.version}"
# an entry is a few times the size of its YAML at most (keys and lines); bounded likewise
MAX_ENTRY_BYTES = 4 * MAX_BYTES


def load_kept(path: Path, *, label: str, cache_dir: Path) -> LocatedYAML:
    """:func:`load_yaml` of ``path``, answered from ``cache_dir`` when the bytes match."""
    raw = read_regular(path, max_bytes=MAX_BYTES, label=label, expected="a YAML file")
    digest = bytes_digest(raw)
    entry = cache_dir / f"{bytes_digest(str(path).encode())[7:23]}.marshal"
    cached = _read(entry, digest, label)
    if cached is not None:
        located, blob = cached
        located.digest = digest
        _pending[id(located)] = (located, entry, blob)
        return located
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})", path=label) from None
    located = load_yaml(path, label=label, text=text)
    located.digest = digest
    _pending[id(located)] = (located, entry, None)
    return located


# docs loaded by this process whose entry awaits :func:`settle`: id -> (doc, entry, the
# entry's bytes if it is on disk)
_pending: dict[int, tuple[LocatedYAML, Path, bytes | None]] = {}


def settle_all(secrets: Sequence[str], *, write: bool = True) -> None:
    """:func:`settle` every doc still pending (the configuration files of the run)."""
    for doc, _entry, _blob in list(_pending.values()):
        settle(doc, secrets, write=write)


def settle(doc: LocatedYAML, secrets: Sequence[str], *, write: bool = True,
           prepared: Any = None) -> None:
    """Write the doc's entry (with ``prepared``, what the loader built from it), or keep the
    one it came from, unless a secret is in it. ``write=False`` (a dry run records
    nothing) only forgets it."""
    item = _pending.pop(id(doc), None)
    if item is None or item[0] is not doc or not write:
        return
    _doc, entry, blob = item
    on_disk = blob is not None and (doc.prepared is not None or prepared is None)
    if not on_disk:
        try:
            blob = _entry_bytes(doc, prepared)
        except ValueError:
            return  # a value marshal cannot hold (a YAML timestamp): parse every time
    assert blob is not None
    leaks = any(s and s.encode("utf-8", "surrogateescape") in blob for s in secrets)
    try:
        if leaks:
            entry.unlink(missing_ok=True)
        elif not on_disk:
            entry.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(entry, blob, sync=False)
    except OSError as exc:  # a read-only checkout still runs, only without the shortcut
        log.debug("parse cache %s not updated: %s", entry, exc)


# The top-level value kept apart (see LocatedYAML): a cached run never reads it.
DEFERRED_KEY = "steps"


def _entry_bytes(doc: LocatedYAML, prepared: Any) -> bytes:
    """(format, digest, data, lines, prepared, deferred): with ``prepared``, the steps and
    their lines are marshalled on their own and held back as bytes (``deferred``)."""
    data, lines = doc.data, doc.lines
    if prepared is None or not isinstance(data, dict) or DEFERRED_KEY not in data:
        return marshal.dumps((_FORMAT, doc.digest, data, lines, prepared, None))
    head = {k: v for k, v in data.items() if k != DEFERRED_KEY}
    head_lines = {p: n for p, n in lines.items() if not p or p[0] != DEFERRED_KEY}
    rest_lines = {p: n for p, n in lines.items() if p and p[0] == DEFERRED_KEY}
    rest = marshal.dumps((data[DEFERRED_KEY], rest_lines, tuple(data)))
    return marshal.dumps((_FORMAT, doc.digest, head, head_lines, prepared,
                          (DEFERRED_KEY, rest)))


def _read(entry: Path, digest: str, label: str) -> tuple[LocatedYAML, bytes] | None:
    try:
        blob = read_regular(entry, max_bytes=MAX_ENTRY_BYTES, label=str(entry))
    except InputError:
        return None  # absent (the usual first run) or unreadable: parse the file
    try:
        value = marshal.loads(blob)
    except (EOFError, ValueError, TypeError):
        log.debug("parse cache %s is damaged; parsing the file", entry)
        return None
    if not (isinstance(value, tuple) and len(value) == 6 and value[0] == _FORMAT
            and value[1] == digest and isinstance(value[3], dict)):
        return None
    deferred = value[5]
    if deferred is not None and not (
            isinstance(value[2], dict) and isinstance(deferred, tuple) and len(deferred) == 2
            and deferred[0] == DEFERRED_KEY and isinstance(deferred[1], bytes)):
        return None
    lines = value[3]
    # marshal gives exact types: one C-level pass over each side (30,000 nodes per 5,000
    # steps), not a Python test per item
    if not (set(map(type, lines)) <= {tuple} and set(map(type, lines.values())) <= {int}):
        return None
    return LocatedYAML(path=label, data=value[2], lines=lines, prepared=value[4],
                       deferred=deferred), blob

