"""In-process: which layer assignments count as shadowing attest.yaml, and the .gitignore
block ``attest init`` appends."""

from __future__ import annotations

from pathlib import Path

import pytest

from attest_cli.config.layers import ConfigSources, Settings, load_settings
from attest_cli.config.shadowing import find_shadows, shadow_warnings
from attest_cli.scaffold import GITIGNORE_BLOCK, with_state_ignored
from attest_cli.yamlfile import load_yaml

pytestmark = pytest.mark.unit

PIPELINE = """\
version: "0.1"
steps: {a: {run: "true"}}
tracing:
  enabled: true
  exporter:
    endpoint: "http://user:hunter2@collector:4318"
    headers: {Authorization: "Bearer s3cr3t"}
cache:
  endpoint: "redis://:pw@cache:6379/0"
"""


def settings_for(tmp_path: Path, *, project: str | None = None,
                 environ: dict[str, str] | None = None,
                 flags: dict[str, object] | None = None) -> Settings:
    (tmp_path / "attest.yaml").write_text(PIPELINE)
    if project is not None:
        (tmp_path / ".attest").mkdir()
        (tmp_path / ".attest" / "config.yaml").write_text(project)
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "xdg"), **(environ or {})}
    doc = load_yaml(tmp_path / "attest.yaml", label="attest.yaml")
    return load_settings(ConfigSources(workdir=tmp_path, pipeline_doc=doc, environ=env,
                                       flags=dict(flags or {})))


def test_only_a_different_value_from_a_higher_layer_shadows(tmp_path: Path) -> None:
    s = settings_for(tmp_path, project="tracing: {enabled: true}\nlog_level: debug\n",
                     environ={"ATTEST_TRACING__EXPORTER__ENDPOINT": "http://other:4318"})
    (shadow,) = find_shadows(s)
    assert shadow.key == "tracing.exporter.endpoint"
    assert (shadow.shadowed.layer, shadow.shadowed.line) == ("pipeline", 6)
    assert (shadow.winner.layer, shadow.winner.source) == ("env",
                                                           "ATTEST_TRACING__EXPORTER__ENDPOINT")


def test_a_later_layer_restoring_the_value_is_not_a_shadow(tmp_path: Path) -> None:
    s = settings_for(tmp_path, project="tracing: {enabled: false}\n",
                     environ={"ATTEST_TRACING__ENABLED": "true"})
    assert find_shadows(s) == []
    assert [a.layer for a in s.trail["tracing.enabled"]] == ["pipeline", "project", "env"]


def test_credentials_never_reach_the_warning(tmp_path: Path) -> None:
    s = settings_for(tmp_path, flags={"cache.endpoint": "redis://:other@cache:6379/1"},
                     environ={"ATTEST_TRACING__EXPORTER__ENDPOINT": "http://u:pw2@x:4318",
                              "ATTEST_TRACING__EXPORTER__HEADERS": "Authorization=Bearer n3w"})
    lines = shadow_warnings(s)
    assert len(lines) == 3
    text = "\n".join(lines)
    for secret in ("hunter2", "pw2", ":pw@", "other@", "s3cr3t", "n3w"):
        assert secret not in text
    assert ("tracing.exporter.headers: <set> is overridden by environment "
            "ATTEST_TRACING__EXPORTER__HEADERS (<set>)") in text
    assert 'cache.endpoint: "redis://***@cache:6379/0" is overridden by a command-line flag (' \
        in text


@pytest.mark.parametrize(("before", "after"), [
    ("", GITIGNORE_BLOCK),
    ("node_modules/", "node_modules/\n\n" + GITIGNORE_BLOCK),
    ("*.pyc\n", "*.pyc\n\n" + GITIGNORE_BLOCK),
    ("\n", "\n" + GITIGNORE_BLOCK),
])
def test_the_block_is_appended_after_the_users_lines(before: str, after: str) -> None:
    assert with_state_ignored(before) == after
    assert with_state_ignored(after) is None  # once


@pytest.mark.parametrize("line", [".attest", ".attest/", "/.attest", "/.attest/", ".attest/*",
                                  "  /.attest/*  "])
def test_a_gitignore_that_already_ignores_attest_state_is_kept(line: str) -> None:
    assert with_state_ignored(f"build/\n{line}\n") is None
