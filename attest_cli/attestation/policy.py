"""Policies: rules a receipt must satisfy, loaded from YAML and evaluated against it.

Each rule has a ``name``, a ``type`` and an ``enforcement`` (``strict``: a violation fails
verification; ``warn``: it is reported only). Types and their fields are in :data:`TYPES`;
an unknown type or field is an input error naming the file, the line and a hint.
"""

from __future__ import annotations

import fnmatch
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attest_cli.attestation.receipt import LoadedReceipt, parse_time
from attest_cli.config.schema import parse_duration, suggest
from attest_cli.yamlfile import LocatedYAML, load_yaml

OK_STATUSES = ("success", "cached")
COMMON_FIELDS = ("name", "type", "enforcement", "description")
# type -> the fields it requires (beyond the common ones)
TYPES: dict[str, tuple[str, ...]] = {
    "step-required": ("step_pattern",),
    "signature-required": (),
    "max-age": ("max_age",),
    "forbidden-command": ("pattern",),
    "output-required": ("path",),
}
ENFORCEMENTS = ("strict", "warn")


@dataclass(frozen=True)
class Rule:
    name: str
    type: str
    enforcement: str = "strict"
    step_pattern: str = ""
    max_age: float = 0.0
    pattern: re.Pattern[str] | None = None
    path: str = ""


@dataclass(frozen=True)
class Outcome:
    """The verdict of one rule on one receipt."""

    rule: Rule
    ok: bool
    detail: str

    @property
    def failed(self) -> bool:
        """A strict violation (a ``warn`` violation is reported but does not fail)."""
        return not self.ok and self.rule.enforcement == "strict"


@dataclass(frozen=True)
class Policy:
    path: str
    rules: tuple[Rule, ...]


def load_policy(path: str | Path, *, label: str | None = None) -> Policy:
    doc = load_yaml(path, label=label)
    return parse_policy(doc)


def parse_policy(doc: LocatedYAML) -> Policy:
    data = doc.data
    if not isinstance(data, dict):
        raise doc.error("a policy file is a mapping with a 'policies' list")
    for key in data:
        if key != "policies":
            raise doc.error(f"unknown key{suggest(str(key), ['policies'])}", str(key))
    items = data.get("policies")
    if not isinstance(items, list) or not items:
        raise doc.error("expected a non-empty list of policies", "policies")
    rules = []
    names: set[str] = set()
    for i, item in enumerate(items):
        rule = _parse_rule(doc, item, ("policies", str(i)))
        if rule.name in names:
            raise doc.error(f"duplicate policy name '{rule.name}'", "policies", str(i), "name")
        names.add(rule.name)
        rules.append(rule)
    return Policy(path=doc.path, rules=tuple(rules))


def _a(kind: str) -> str:
    return ("an " if kind[0] in "aeiou" else "a ") + kind


def _text(doc: LocatedYAML, item: dict[str, Any], key: str, where: tuple[str, ...]) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise doc.error("expected a non-empty string", *where, key)
    return value


def _parse_rule(doc: LocatedYAML, item: Any, where: tuple[str, ...]) -> Rule:
    if not isinstance(item, dict):
        raise doc.error("each policy is a mapping with at least name and type", *where)
    kind = _text(doc, item, "type", where)
    if kind not in TYPES:
        raise doc.error(f"unknown policy type '{kind}'{suggest(kind, TYPES)} "
                        f"(known: {', '.join(TYPES)})", *where, "type")
    allowed = (*COMMON_FIELDS, *TYPES[kind])
    for key in item:
        if key not in allowed:
            raise doc.error(f"unknown field for {_a(kind)} policy{suggest(str(key), allowed)} "
                            f"(fields: {', '.join(allowed)})", *where, str(key))
    for key in TYPES[kind]:
        if key not in item:
            raise doc.error(f"{_a(kind)} policy needs '{key}'", *where)
    name = _text(doc, item, "name", where)
    enforcement = item.get("enforcement", "strict")
    if enforcement not in ENFORCEMENTS:
        hint = suggest(str(enforcement), ENFORCEMENTS)
        raise doc.error(f"enforcement must be strict or warn{hint}", *where, "enforcement")
    fields: dict[str, Any] = {}
    if kind == "step-required":
        fields["step_pattern"] = _text(doc, item, "step_pattern", where)
    elif kind == "max-age":
        raw = item.get("max_age")
        try:
            fields["max_age"] = parse_duration(raw)
        except ValueError as exc:
            raise doc.error(str(exc), *where, "max_age") from None
    elif kind == "forbidden-command":
        text = _text(doc, item, "pattern", where)
        try:
            fields["pattern"] = re.compile(text)
        except re.error as exc:
            raise doc.error(f"not a valid regular expression: {exc}", *where, "pattern") from None
    elif kind == "output-required":
        fields["path"] = _text(doc, item, "path", where)
    return Rule(name=name, type=kind, enforcement=enforcement, **fields)


def evaluate(policy: Policy, receipt: LoadedReceipt, *, signature_ok: bool | None,
             now: float | None = None) -> list[Outcome]:
    """Every rule's verdict. ``signature_ok`` is None when signature checks were skipped."""
    now = time.time() if now is None else now
    return [_evaluate(rule, receipt, signature_ok, now) for rule in policy.rules]


def _evaluate(rule: Rule, receipt: LoadedReceipt, signature_ok: bool | None,
              now: float) -> Outcome:
    steps = receipt.steps
    if rule.type == "step-required":
        matching = [s for s in steps if fnmatch.fnmatchcase(s["name"], rule.step_pattern)]
        good = [s["name"] for s in matching if s["status"] in OK_STATUSES]
        if good:
            return Outcome(rule, True, f"step {good[0]} succeeded")
        if matching:
            states = ", ".join(f"{s['name']} {s['status']}" for s in matching)
            return Outcome(rule, False, f"no step matching '{rule.step_pattern}' succeeded "
                                        f"({states})")
        return Outcome(rule, False, f"no step matches '{rule.step_pattern}'")
    if rule.type == "signature-required":
        if signature_ok is None:
            return Outcome(rule, False, "signature checks were skipped (--no-signatures)")
        return Outcome(rule, signature_ok, "signed and the signature is valid" if signature_ok
                       else "the signature is not valid")
    if rule.type == "max-age":
        age = now - parse_time(receipt.body["timestamp"])
        ok = age <= rule.max_age
        return Outcome(rule, ok, f"receipt is {_span(age)} old (limit {_span(rule.max_age)})")
    if rule.type == "forbidden-command":
        assert rule.pattern is not None
        bad = [s["name"] for s in steps if rule.pattern.search(s["command"])]
        if bad:
            return Outcome(rule, False, f"step {', '.join(bad)} runs a command matching "
                                        f"'{rule.pattern.pattern}'")
        return Outcome(rule, True, f"no command matches '{rule.pattern.pattern}'")
    if rule.type == "output-required":
        paths = [o["path"] for s in steps if s["status"] in OK_STATUSES for o in s["outputs"]]
        want = rule.path
        prefix = want.rstrip("/") + "/"
        hits = [p for p in paths if p == want or p.startswith(prefix)
                or fnmatch.fnmatchcase(p, want)]
        if hits:
            return Outcome(rule, True, f"{len(hits)} output file(s) under {want}")
        return Outcome(rule, False, f"no successful step produced an output at {want}")
    raise AssertionError(rule.type)  # parse_policy admits only known types


def _span(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"
