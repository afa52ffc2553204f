"""The registries: built-ins by name, options given when made, plug-ins beside built-ins."""

from __future__ import annotations

import json

import pytest

from attest_cli.errors import NotAvailableError, UsageError
from attest_cli.render.base import FunctionRenderer, Registry
from attest_cli.render.registry import REGISTRIES, RUN_REPORT, for_kind, register


def test_a_format_that_does_not_apply_lists_the_formats_in_their_order() -> None:
    with pytest.raises(UsageError) as err:
        RUN_REPORT.renderer("flamegraph")
    assert str(err.value) == ("--format flamegraph does not apply to an attest run report; "
                              "use one of: text, json, html, chrome-trace")


def test_every_result_type_has_a_registry_with_its_formats() -> None:
    formats = {name: REGISTRIES[name].formats() for name in (
        "run", "cpu", "memory", "benchmark", "verification", "history", "benchmark-result",
        "comparison", "stored-results", "health", "cache-stats", "cache-explain", "plan")}
    assert formats["run"] == ["text", "json", "html", "chrome-trace"]
    assert formats["cpu"] == ["text", "json", "html", "speedscope"]
    assert formats["memory"] == ["text", "json", "html", "flamegraph", "table", "stats"]
    assert formats["benchmark"] == ["text", "json", "html", "markdown"]
    assert formats["verification"] == formats["health"] == formats["plan"] == ["text", "json"]
    assert formats["history"] == formats["cache-stats"] == ["table", "json"]
    assert formats["benchmark-result"] == formats["comparison"] == ["table", "json", "markdown"]


def test_a_built_in_is_imported_only_when_looked_up_and_says_its_format() -> None:
    made = REGISTRIES["verification"].renderer("json")
    assert (made.format, made.extension) == ("json", "json")
    assert made.render([]) == json.dumps({"ok": True, "receipts": []}, indent=2) + "\n"


def test_a_registered_function_lands_beside_the_built_ins() -> None:
    registry: Registry[list[int]] = Registry("numbers", "some numbers", {
        "text": "attest_cli.render.figures:size"})
    registry.add("csv", lambda values: ",".join(map(str, values)) + "\n")
    assert registry.formats() == ["text", "csv"]
    assert registry.render("csv", [1, 2]) == "1,2\n"
    assert isinstance(registry.renderer("csv"), FunctionRenderer)


def test_plug_in_register_feeds_the_same_registry_and_may_add_a_kind() -> None:
    register("history", "count", lambda records: f"{len(records)}\n")
    try:
        assert REGISTRIES["history"].render("count", []) == "0\n"
        assert "count" in REGISTRIES["history"].formats()
    finally:
        REGISTRIES["history"]._added.pop("count")
    register("test-only-kind", "text", lambda value: "seen\n")
    try:
        assert for_kind("test-only-kind").render("text", None) == "seen\n"
    finally:
        REGISTRIES.pop("test-only-kind")


def test_a_kind_nothing_renders_is_not_available() -> None:
    with pytest.raises(NotAvailableError, match="analyzing a mystery file is not available"):
        for_kind("mystery", "a mystery file").renderer("text")
