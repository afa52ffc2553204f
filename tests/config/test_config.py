"""``attest config``: typed keys, layers with origins, env overrides, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.support import attest, write_pipeline


def test_set_get_unset_round_trip(project: Path) -> None:
    assert attest("config", "set", "cache.max_size", "5GB", cwd=project).returncode == 0
    assert attest("config", "get", "cache.max_size", cwd=project).stdout == "5000000000\n"
    data = yaml.safe_load((project / ".attest" / "config.yaml").read_text())
    assert data == {"cache": {"max_size": 5000000000}}
    assert attest("config", "unset", "cache.max_size", cwd=project).returncode == 0
    assert attest("config", "get", "cache.max_size", cwd=project).stdout == "10000000000\n"
    assert yaml.safe_load((project / ".attest" / "config.yaml").read_text()) == {}


def test_wrong_value_or_unknown_key_exits_2_with_a_hint(project: Path) -> None:
    bad = attest("config", "set", "tracing.sampling.rate", "1.5", cwd=project)
    assert bad.returncode == 2 and "tracing.sampling.rate: must be <= 1" in bad.stderr
    unknown = attest("config", "set", "cache.backnd", "redis", cwd=project)
    assert unknown.returncode == 2 and "did you mean 'cache.backend'?" in unknown.stderr
    enum = attest("config", "set", "log_level", "loud", cwd=project)
    assert enum.returncode == 2 and "expected one of trace, debug, info, warn, error" in enum.stderr
    assert not (project / ".attest" / "config.yaml").exists()  # nothing written


def test_layers_and_origins(project: Path, tmp_path: Path) -> None:
    xdg = project / ".xdg" / "attest"
    xdg.mkdir(parents=True)
    (xdg / "config.yaml").write_text("log_level: error\ncache:\n  retention_days: 7\n")
    write_pipeline(project, "cache:\n  retention_days: 8\n  backend: local\n"
                            "steps:\n  a: {run: 'true'}\n")
    (project / ".attest").mkdir()
    (project / ".attest" / "config.yaml").write_text("cache:\n  retention_days: 9\n")
    extra = tmp_path / "extra.yaml"
    extra.write_text("parallel: 3\n")
    proc = attest("--config", str(extra), "config", "show", "--origin", "--format", "json",
                  cwd=project, env={"ATTEST_CACHE_DIR": "/tmp/elsewhere"})
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert shown["log_level"]["value"] == "error"
    assert shown["log_level"]["origin"].startswith("user")
    assert shown["cache.retention_days"] == {"value": 9,
                                             "origin": "project " + str(project / ".attest" /
                                                                        "config.yaml")}
    assert shown["cache.backend"]["origin"] == "pipeline attest.yaml"
    assert shown["parallel"] == {"value": 3, "origin": f"file {extra}"}
    assert shown["cache.dir"] == {"value": "/tmp/elsewhere", "origin": "env ATTEST_CACHE_DIR"}
    assert shown["tracing.enabled"]["origin"] == "default"


def test_generic_env_override(project: Path) -> None:
    proc = attest("config", "get", "monitoring.prometheus.enabled", cwd=project,
                  env={"ATTEST_MONITORING__PROMETHEUS__ENABLED": "true"})
    assert proc.stdout == "true\n"


def test_global_writes_the_user_file(project: Path) -> None:
    assert attest("config", "set", "--global", "log_format", "json", cwd=project).returncode == 0
    user = project / ".xdg" / "attest" / "config.yaml"
    assert yaml.safe_load(user.read_text()) == {"log_format": "json"}
    assert not (project / ".attest" / "config.yaml").exists()


def test_bad_config_file_names_file_line_and_key(project: Path) -> None:
    (project / ".attest").mkdir()
    (project / ".attest" / "config.yaml").write_text("cache:\n  timeout: soon\n")
    proc = attest("config", "validate", cwd=project)
    assert proc.returncode == 2
    assert f"{project}/.attest/config.yaml:2: cache.timeout: expected a duration" in proc.stderr


def test_list_covers_every_key_with_type_and_default(project: Path) -> None:
    proc = attest("config", "list", "--format", "json", cwd=project)
    keys = {k["key"]: k for k in json.loads(proc.stdout)}
    for key in ("log_level", "cache.backend", "monitoring.prometheus.endpoint",
                "tracing.exporter.type", "tracing.sampling.always_sample_errors",
                "health.endpoints.readiness", "signing.key"):
        assert key in keys
    assert keys["monitoring.prometheus.endpoint"]["default"] == ":9090"
    assert keys["health.endpoints.liveness"]["default"] == "/health/live"


def test_path_lists_the_layer_files(project: Path) -> None:
    proc = attest("config", "path", cwd=project)
    assert "project" in proc.stdout and ".attest/config.yaml" in proc.stdout


def test_init_refuses_to_overwrite_without_force(project: Path) -> None:
    assert attest("init", cwd=project).returncode == 0
    again = attest("init", cwd=project)
    assert again.returncode == 2 and "--force" in again.stderr
    assert attest("init", "--force", cwd=project).returncode == 0
    run = attest("run", cwd=project)
    assert run.returncode == 0, run.stderr
    assert (project / "build" / "greeting.txt").read_text() == "hello from attest\n"


def test_config_set_through_a_symlinked_file_keeps_the_link(project: Path) -> None:
    """A config kept in a dotfiles repository stays a link; its target is replaced atomically."""
    (project / ".attest").mkdir(exist_ok=True)
    (project / "dotfiles.yaml").write_text("log_level: info\n")
    (project / ".attest" / "config.yaml").symlink_to(project / "dotfiles.yaml")
    assert attest("config", "set", "log_level", "debug", cwd=project).returncode == 0
    assert (project / ".attest" / "config.yaml").is_symlink()
    assert yaml.safe_load((project / "dotfiles.yaml").read_text()) == {"log_level": "debug"}


def test_a_secret_is_kept_out_of_the_project_file_and_never_echoed(project: Path) -> None:
    token = "authorization=Bearer s3cr3t-t0ken"
    refused = attest("config", "set", "cache.headers", token, cwd=project)
    assert refused.returncode == 2
    assert "ATTEST_CACHE__HEADERS" in refused.stderr and "--global" in refused.stderr
    assert not (project / ".attest" / "config.yaml").exists()
    done = attest("config", "set", "--global", "cache.headers", token, cwd=project)
    assert done.returncode == 0, done.stderr
    assert "s3cr3t" not in done.stdout + done.stderr and "<set>" in done.stderr
    user = project / ".xdg" / "attest" / "config.yaml"
    assert user.stat().st_mode & 0o777 == 0o600
    assert yaml.safe_load(user.read_text()) == {
        "cache": {"headers": {"authorization": "Bearer s3cr3t-t0ken"}}}
    # a later plain key keeps the file private; the secret still reads back
    assert attest("config", "set", "--global", "log_level", "warn", cwd=project).returncode == 0
    assert user.stat().st_mode & 0o777 == 0o600
    assert attest("config", "get", "cache.headers", cwd=project).stdout == "<set>\n"
