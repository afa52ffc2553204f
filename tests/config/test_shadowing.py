"""A key set in attest.yaml and overridden by a higher layer is never silently ignored.

``attest init`` must not write settings that shadow the pipeline file's sections (issue
15, item 7), and ``config validate`` / ``pipeline validate`` name the layer that wins when
one does.
"""

from __future__ import annotations

from pathlib import Path

from tests.support import attest

# The seed's sections, as a user pastes them under the pipeline written by `attest init`.
SEED_SECTIONS = """
monitoring:
  prometheus:
    enabled: true
    endpoint: ":9090"
    path: "/metrics"
    namespace: "attest"
tracing:
  enabled: true
  service_name: "attest-pipeline"
  exporter:
    type: "jaeger"
    endpoint: "http://jaeger:14268/api/traces"
  # Trace sampling
  sampling:
    rate: 0.1 # Sample 10% of traces
    always_sample_errors: true
"""


def init_and_paste(project: Path) -> None:
    r = attest("init", cwd=project)
    assert r.returncode == 0, r.stderr
    with (project / "attest.yaml").open("a", encoding="utf-8") as f:
        f.write(SEED_SECTIONS)


def get(project: Path, key: str, env: dict[str, str] | None = None) -> str:
    r = attest("config", "get", key, cwd=project, env=env)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def line_of(project: Path, text: str, below: int = 0) -> int:
    """The 1-based line of ``text`` in attest.yaml, plus ``below``."""
    lines = (project / "attest.yaml").read_text().splitlines()
    return lines.index(text) + 1 + below


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "warning" in line]


def test_sections_pasted_after_init_take_effect(project: Path) -> None:
    init_and_paste(project)
    assert get(project, "monitoring.prometheus.enabled") == "true"
    assert get(project, "tracing.enabled") == "true"
    assert get(project, "tracing.sampling.rate") == "0.1"
    assert get(project, "tracing.exporter.type") == "jaeger"
    shown = attest("config", "show", "--origin", cwd=project).stdout
    enabled = next(line for line in shown.splitlines()
                   if line.startswith("monitoring.prometheus.enabled"))
    assert "pipeline attest.yaml" in enabled
    for cmd in (("config", "validate"), ("pipeline", "validate")):
        r = attest(*cmd, cwd=project)
        assert r.returncode == 0, r.stderr
        assert warnings(r.stderr) == []


def test_validate_warns_once_when_the_project_file_shadows_attest_yaml(project: Path) -> None:
    init_and_paste(project)
    assert attest("config", "set", "monitoring.prometheus.enabled", "false",
                  cwd=project).returncode == 0
    assert attest("config", "set", "tracing.sampling.rate", "0.1",  # the same value: no warning
                  cwd=project).returncode == 0
    assert get(project, "monitoring.prometheus.enabled") == "false"
    for cmd in (("config", "validate"), ("pipeline", "validate")):
        r = attest(*cmd, cwd=project)
        assert r.returncode == 0, r.stderr
        (line,) = warnings(r.stderr)
        at = line_of(project, "monitoring:", below=2)
        assert line == (f"attest: warning: attest.yaml:{at}: monitoring.prometheus.enabled: true "
                        "is overridden by .attest/config.yaml (false), which takes precedence "
                        "over attest.yaml")


def test_validate_names_the_environment_variable_that_wins(project: Path) -> None:
    init_and_paste(project)
    env = {"ATTEST_TRACING__ENABLED": "false"}
    r = attest("config", "validate", cwd=project, env=env)
    assert r.returncode == 0, r.stderr
    (line,) = warnings(r.stderr)
    at = line_of(project, "tracing:", below=1)
    assert line == (f"attest: warning: attest.yaml:{at}: tracing.enabled: true is overridden by "
                    "environment ATTEST_TRACING__ENABLED (false), which takes precedence over "
                    "attest.yaml")


def test_validate_names_the_config_file_that_wins_and_keeps_its_exit_code(
        project: Path) -> None:
    init_and_paste(project)
    (project / "ci.yaml").write_text("tracing:\n  exporter:\n    type: otlp\n")
    r = attest("--config", "ci.yaml", "pipeline", "validate", cwd=project)
    assert r.returncode == 0, r.stderr
    (line,) = warnings(r.stderr)
    assert "tracing.exporter.type: \"jaeger\" is overridden by ci.yaml (\"otlp\")" in line
    # a broken pipeline still exits 2, and the warning does not replace the error
    (project / "attest.yaml").write_text("version: '0.1'\nsteps: {a: {run: true, needs: [b]}}\n")
    bad = attest("pipeline", "validate", cwd=project)
    assert bad.returncode == 2


def test_the_user_file_is_below_attest_yaml_and_never_shadows_it(project: Path) -> None:
    init_and_paste(project)
    user = project / ".xdg" / "attest" / "config.yaml"  # tests.support points XDG here
    user.parent.mkdir(parents=True)
    user.write_text("monitoring:\n  prometheus:\n    enabled: false\n")
    assert get(project, "monitoring.prometheus.enabled") == "true"
    r = attest("config", "validate", cwd=project)
    assert r.returncode == 0 and warnings(r.stderr) == []
