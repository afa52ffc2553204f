"""Finding the run features: the ``attest.run_features`` entry points, built-ins included.

attest's own features (cache, tracing, metrics, attestation, JUnit) are declared in its
``pyproject.toml`` exactly as a third-party package declares one, so there is one way in.
They are attached in ``order`` (then name), so the order is deterministic whatever order
the installed distributions are listed in. A feature that cannot be loaded, or is not a
:class:`~attest_cli.runner.features.RunFeature`, is one warning and the run goes on
without it. Entry points are read only when a run starts (never for ``attest --help``).

Reading them means importing :mod:`importlib.metadata` and opening every installed
distribution's metadata: ~10 ms of every run (~25 ms with this machine's ~120
distributions), for a list that changes only when a package is installed or removed. So
the list found is kept in the user's cache directory (:func:`user_cache_dir`:
``$XDG_CACHE_HOME/attest/entry-points.json``, ``~/.cache/attest/`` by default), where every
project run by the same interpreter finds it - a fresh checkout's first run too - and not
in a project's ``.attest/``, which a restored CI cache may bring from another machine: the
list names modules to import. It is keyed (as stevedore keys its cache) by the
interpreter, ``sys.path`` and, in each of its
directories, the name and modification time of every ``*.dist-info`` and ``*.egg-info``
directory - installing, upgrading, reinstalling or removing a distribution replaces one -
and read again only when that key changes. Up to :data:`KEPT_LISTS` lists are kept, one
per interpreter and ``sys.path`` (``attest`` and ``python -m attest_cli`` differ). The kept
file is a cache, never a source of truth: one that does not load is a miss and is rewritten.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from attest_cli.errors import InputError
from attest_cli.regularfile import read_regular
from attest_cli.runner.features import ENTRY_POINT_GROUP, THIRD_PARTY_ORDER, RunFeature

log = logging.getLogger("attest.pipeline")

BUILTIN_PREFIX = "attest_cli."
CACHE_FILE = "entry-points.json"
_FORMAT = "attest-entry-points/2"
KEPT_LISTS = 4  # one per distinct key (interpreter, sys.path), the most recently read
MAX_BYTES = 4 * 2**20  # the kept file: a few KB per list (the key lists the distributions)
_METADATA_DIRS = (".dist-info", ".egg-info")
# the syntax of an entry point's value (importlib.metadata.EntryPoint.pattern)
_VALUE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")


class LoadedFeature(NamedTuple):  # a NamedTuple: a frozen dataclass costs ~0.8 ms to define
    name: str
    order: int
    feature: RunFeature
    builtin: bool  # attest's own: an error in attach is attest's error, not a warning


def load_features(*, cache_dir: Path | None = None) -> list[LoadedFeature]:
    """Every installed run feature, in attach order; ``cache_dir`` keeps the entry points
    found between runs (see the module's docstring)."""
    out: list[LoadedFeature] = []
    seen: set[str] = set()
    for name, value in declared_entry_points(cache_dir):
        if name in seen:  # the same distribution found twice on the path
            continue
        seen.add(name)
        loaded = _load(name, value)
        if loaded is not None:
            out.append(loaded)
    return sorted(out, key=lambda f: (f.order, f.name))


def declared_entry_points(cache_dir: Path | None = None) -> list[tuple[str, str]]:
    """(name, value) of each ``attest.run_features`` entry point, in path order."""
    key = _path_key()
    path = cache_dir / CACHE_FILE if cache_dir is not None else None
    kept = _read(path) if path is not None else []
    for item in kept:
        if item["key"] == key:
            return list(item["entry_points"])
    from importlib.metadata import entry_points

    found = [(ep.name, ep.value) for ep in entry_points(group=ENTRY_POINT_GROUP)]
    if path is not None:  # newest first; `attest` and `python -m attest_cli` differ in sys.path
        others = [item for item in kept if item["key"][:2] != key[:2]]  # superseded: dropped
        _write(path, [{"key": key, "entry_points": found}, *others][:KEPT_LISTS])
    return found


def user_cache_dir(environ: Mapping[str, str]) -> Path | None:
    """``$XDG_CACHE_HOME/attest`` (``~/.cache/attest`` when unset), as the XDG base
    directory specification places a user's non-essential cached data; None without a
    home to put it in (nothing is kept then)."""
    base = environ.get("XDG_CACHE_HOME")
    if not base or not os.path.isabs(base):  # the specification: relative paths are invalid
        home = environ.get("HOME")
        if not home or not os.path.isabs(home):
            return None
        base = os.path.join(home, ".cache")
    return Path(base) / "attest"


def _path_key() -> list[Any]:
    """What the installed distributions depend on: the interpreter, ``sys.path``, and in each
    of its directories the name and modification time of every distribution's metadata
    directory (a zip file on the path: its own time). ~0.5 ms for 120 distributions."""
    listing: list[Any] = []
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as it:
                listing.append(sorted([d.name, d.stat().st_mtime_ns] for d in it
                                      if d.name.endswith(_METADATA_DIRS)))
        except NotADirectoryError:
            listing.append(_mtime(entry))
        except (OSError, ValueError):
            listing.append(None)
    return [sys.executable, list(sys.path), listing]


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except (OSError, ValueError):
        return None


def _read(path: Path) -> list[dict[str, Any]]:
    """The kept lists, each checked for shape (a malformed file is a miss)."""
    try:  # a regular file within its bound, as every file attest reads (docs/security.md)
        data = json.loads(read_regular(path, max_bytes=MAX_BYTES, label=str(path)))
        if data["format"] != _FORMAT:
            return []
        return [{"key": item["key"],
                 "entry_points": [(str(name), str(value))
                                  for name, value in item["entry_points"]]}
                for item in data["lists"]]
    except (InputError, OSError, ValueError, KeyError, TypeError) as exc:
        log.debug("ignoring the kept entry points %s: %s", path, exc)
        return []


def _write(path: Path, lists: list[dict[str, Any]]) -> None:
    from attest_cli.atomic import write_atomic

    try:
        if not _owned(path.parent):  # e.g. under sudo with the user's HOME
            log.debug("not keeping the entry points in %s: not this user's", path.parent)
            return
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # the user's alone
        write_atomic(path, json.dumps({"format": _FORMAT, "lists": lists}), sync=False)
    except (InputError, OSError) as exc:  # a cache: the next run reads them again
        log.debug("could not keep the entry points in %s: %s", path, exc)


def _owned(directory: Path) -> bool:
    """Whether ``directory``, or its nearest existing ancestor, belongs to this user: a
    cache is never created in someone else's home (pip's rule for its cache)."""
    for candidate in (directory, *directory.parents):
        try:
            return os.stat(candidate).st_uid == os.geteuid()
        except FileNotFoundError:
            continue
    return False


def _resolve(value: str) -> Any:
    """The object an entry point names (as ``EntryPoint.load``): ``module:attr.attr``."""
    match = _VALUE.match(value)
    if match is None:
        raise ValueError(f"not an entry point reference: {value!r}")
    module = importlib.import_module(match.group("module"))
    attrs = filter(None, (match.group("attr") or "").split("."))
    return functools.reduce(getattr, attrs, module)


def _load(name: str, value: str) -> LoadedFeature | None:
    try:
        obj = _resolve(value)
        feature = obj() if isinstance(obj, type) else obj
        if not callable(getattr(feature, "attach", None)):
            raise TypeError("not a run feature (it has no attach(run))")
        order = getattr(feature, "order", THIRD_PARTY_ORDER)
        if not isinstance(order, int):
            raise TypeError(f"order {order!r} is not an integer")
    except Exception as exc:
        log.warning("run feature %s (%s) failed to load and is skipped: %s", name, value,
                    exc, exc_info=log.isEnabledFor(logging.DEBUG))
        return None
    return LoadedFeature(name=name, order=order, feature=feature,
                         builtin=value.startswith(BUILTIN_PREFIX))
