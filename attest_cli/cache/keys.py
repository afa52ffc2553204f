"""The cache key of a step: BLAKE3 over a canonical, length-prefixed, sorted encoding.

A key is built from named *components* (``command``, ``env:NAME``, ``input:PATH``,
``needs:STEP``, ``outputs``, ``platform``, ``format``), each a short string. The components
are sorted by name and every string is length-prefixed before hashing, so neither the order
of a YAML mapping nor a value containing a separator can change or collide a key. Keeping the
components (not just the key) lets ``attest cache explain`` and ``attest run -v`` say which
one differs from the last stored entry.

What is deliberately *not* in the key: the ambient environment (it differs on every machine
and would kill sharing; a step opts variables in with ``cache_env``), the values of
``secrets`` (a key must not be a way to test guesses of a secret), timestamps, the absolute
path of the project, and the step's name (two identical steps share an entry).
"""

from __future__ import annotations

import functools
import platform
import re
from collections.abc import Container, Iterable, Iterator, Mapping
from functools import cached_property
from typing import NamedTuple

from attest_cli.digest import bytes_digest
from attest_cli.record import FrozenRecord

FORMAT_VERSION = "3"  # 2: owner bits, link targets, empty dirs, outputs; 3: inline files

# Variables a command may reference without them being part of the key: they locate tools
# and the user, not the build's meaning. Anything else referenced but undeclared is warned.
_BENIGN_VARS = frozenset({"PATH", "HOME", "PWD", "USER", "LOGNAME", "SHELL", "TMPDIR", "TMP",
                          "TEMP", "TERM", "LANG", "LC_ALL", "HOSTNAME", "OLDPWD", "SHLVL",
                          "TRACEPARENT", "TRACESTATE"})
_VAR_REF = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


def encode(pairs: Iterable[tuple[str, str]]) -> bytes:
    """Canonical bytes of name/value pairs: sorted, each string 8-byte length-prefixed."""
    items = sorted(pairs)
    parts = [len(items).to_bytes(8, "big")]
    append = parts.append
    for name, value in items:
        for text in (name, value):
            raw = text.encode("utf-8", "surrogateescape")
            append(len(raw).to_bytes(8, "big"))
            append(raw)
    return b"".join(parts)


@functools.cache
def platform_tag() -> str:
    """OS and architecture: binaries built on one are not outputs for the other."""
    return f"{platform.system().lower()}/{platform.machine().lower()}"


def key_env(pipeline_env: Mapping[str, str], step_env: Mapping[str, str],
            cache_env: Iterable[str], exclude: Iterable[str], secrets: Container[str],
            environ: Mapping[str, str]) -> dict[str, str]:
    """The variables whose values enter the key.

    Pipeline and step ``env`` (step wins), plus the ambient variables listed in
    ``cache_env``; minus ``cache_exclude_env``; never a ``secrets`` entry's value.
    ``secrets`` is only asked for membership (never copied): it is the whole pipeline's.
    """
    merged: dict[str, str] = {}
    for name in cache_env:
        if name in environ:
            merged[name] = environ[name]
    merged.update(pipeline_env)
    merged.update(step_env)
    hidden = set(exclude)
    return {k: v for k, v in merged.items() if k not in hidden and k not in secrets}


def undeclared_variables(command: str, declared: Iterable[Container[str]],
                         environ: Mapping[str, str]) -> list[str]:
    """Ambient variables the command references that are not in the key (stale-hit risk).

    ``declared`` is a few name collections, only asked for membership (never merged: one
    of them is the whole pipeline's secret names)."""
    groups = list(declared)
    seen: list[str] = []
    for name in _VAR_REF.findall(command):
        if (name in environ and not any(name in g for g in groups) and name not in _BENIGN_VARS
                and not name.startswith("ATTEST_") and name not in seen):
            seen.append(name)
    return seen


class InputState(NamedTuple):
    """One declared input as it enters the key: what a step reading it can tell apart.

    A file: its executable bit, its owner's permission bits (``r``/``w``/``x``, the same
    under any sane umask) and its content. A symlink: its link text *and* what it points to
    (the content and owner bits of a file target; ``dir``, whose files are inputs of their
    own under the link's path; ``missing``). An empty directory: that it exists. Group and
    other permission bits are left out on purpose: they follow the umask of the checkout
    (``022`` on CI, ``002`` on many desktops), and keying on them would stop every
    developer from sharing CI's entries (see docs/cache.md).
    """

    path: str  # relative POSIX path
    kind: str  # file | symlink | dir
    mode: int  # permission bits (of the target, for a symlink to a file)
    digest: str  # blake3:<hex> of the content (of the link text for a symlink)
    target: str | None = None  # a symlink's target: "file:<digest>", "dir", "missing", ...

    @property
    def executable(self) -> bool:
        return bool(self.mode & 0o111)

    def _bits(self) -> str:
        return _mode_bits(self.mode & 0o777)

    def component(self) -> str:
        if self.kind == "dir":
            return "d"
        if self.kind == "symlink":
            target = self.target or "unfollowed"
            if target.startswith("file:"):
                target = f"{self._bits()}:{target}"
            return f"l:{self.digest}:{target}"
        return f"{self._bits()}:{self.digest}"


class KeyParts(FrozenRecord):
    """Every component of one step's key, by name; the key is a digest of all of them."""

    items: dict[str, str]

    def __init__(self, items: dict[str, str]) -> None:
        self.__dict__.update(items=items)

    @cached_property
    def key(self) -> str:
        return bytes_digest(encode(self.items.items())).removeprefix("blake3:")

    def summary(self) -> dict[str, str]:
        """Short form for events and logs: inputs and env folded into one digest each."""
        out: dict[str, str] = {}
        groups: dict[str, list[tuple[str, str]]] = {"input": [], "env": []}
        for name, value in self.items.items():
            if name.startswith("input:"):
                groups["input"].append((name, value))
            elif name.startswith("env:"):
                groups["env"].append((name, value))
            else:
                out[name] = value
        for head, pairs in groups.items():
            # display only (not the key): a plain join is enough to tell two sets apart
            folded = "\0".join(f"{n}\0{v}" for n, v in sorted(pairs))
            out[head + "s"] = (f"{len(pairs)} " + ("file(s) " if head == "input" else "var(s) ")
                               + bytes_digest(folded.encode("utf-8", "surrogateescape"))[7:23])
        return out

    def lazy_summary(self) -> LazySummary:
        """:meth:`summary`, computed when first read (see :class:`LazySummary`)."""
        return LazySummary(self)

    def diff(self, previous: Mapping[str, str]) -> list[str]:
        """What changed since ``previous`` (the components of the last stored entry)."""
        return [str(d["change"]) for d in self.differences(previous)]

    def differences(self, previous: Mapping[str, str]) -> list[dict[str, str | None]]:
        """Each differing component: its name, both values and the change in words."""
        out: list[dict[str, str | None]] = []
        for name in sorted(set(self.items) | set(previous)):
            old, new = previous.get(name), self.items.get(name)
            if old == new:
                continue
            head, _, rest = name.partition(":")
            what = {"input": f"input {rest}", "env": f"env {rest}",
                    "needs": f"output of needed step '{rest}'"}.get(head, head)
            verb = "added" if old is None else "removed" if new is None else "changed"
            out.append({"component": name, "before": old, "now": new,
                        "change": f"{what} {verb}"})
        return out


class LazySummary(Mapping[str, str]):
    """A key's :meth:`KeyParts.summary`, folded when something first reads it.

    Every lookup hands one to its ``CacheChecked`` event, and only the ``-vv`` log reads it:
    folding 10,000 inputs into it was ~4 ms of each lookup of such a step."""

    def __init__(self, parts: KeyParts) -> None:
        self._parts = parts
        self._value: dict[str, str] | None = None

    def _summary(self) -> dict[str, str]:
        if self._value is None:
            self._value = self._parts.summary()
        return self._value

    def __getitem__(self, name: str) -> str:
        return self._summary()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._summary())

    def __len__(self) -> int:
        return len(self._summary())


@functools.cache
def _mode_bits(mode: int) -> str:
    """``x`` if any executable bit, then the owner's ``rwx``: ``xrwx``, ``-rw-``, ...
    Remembered per mode (a few distinct ones per tree, thousands of files)."""
    owner = mode >> 6
    return ("x" if mode & 0o111 else "-") + "".join(
        c if owner & bit else "-" for c, bit in (("r", 4), ("w", 2), ("x", 1)))


def build_parts(*, command: str, env: Mapping[str, str], inputs: Iterable[InputState],
                upstream: Mapping[str, str], outputs: Iterable[str] = ()) -> KeyParts:
    """Assemble the components; ``upstream`` maps each needed step to its output digest.

    The declared ``outputs`` are a component: an entry restores exactly what was declared
    when it was stored, so declaring another output must miss (and run the step), not
    restore an entry that never had it."""
    items = {"format": FORMAT_VERSION, "platform": platform_tag(),
             "command": bytes_digest(command.encode("utf-8", "surrogateescape")),
             "outputs": bytes_digest(encode((str(i), p) for i, p in
                                            enumerate(sorted(set(outputs)))))}
    for name, value in env.items():
        items[f"env:{name}"] = bytes_digest(value.encode("utf-8", "surrogateescape"))
    for state in inputs:
        items[f"input:{state.path}"] = state.component()
    for step, digest in upstream.items():
        items[f"needs:{step}"] = digest
    return KeyParts(items)


def explain_changes(changes: list[str], limit: int = 3) -> str:
    """One line for a log field: the first few changes and how many more."""
    head = "; ".join(changes[:limit])
    return head + (f" (+{len(changes) - limit} more)" if len(changes) > limit else "")
