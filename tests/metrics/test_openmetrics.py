"""``/metrics`` negotiates its format like prometheus_client's ``choose_encoder``: OpenMetrics
when the scraper's ``Accept`` asks for it (Prometheus does by default), the 0.0.4 text format
otherwise; both from ``attest serve`` and from a run's live endpoint.

The text format goes through ``promtool check metrics`` (whose linter reads only the 0.0.4
format: on OpenMetrics it reports every ``_total`` sample as lacking help). The OpenMetrics
body goes through prometheus_client's strict OpenMetrics parser and through Prometheus' own
OpenMetrics parser, ``promtool tsdb create-blocks-from openmetrics`` (which needs a
timestamp on each sample, so one is appended, and rejects a body without ``# EOF``). Both
bodies must carry the same samples.
"""

from __future__ import annotations

import re
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.metrics.helpers import (
    PIPELINE,
    live_pipeline,
    promtool_check_metrics,
    samples,
    start_attest,
    stop,
)
from tests.support import (
    attest,
    free_port,
    require_binary,
    wait_for,
    wait_for_port,
    write_pipeline,
)

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TEXT = "text/plain; version=0.0.4; charset=utf-8"
# what Prometheus 2.x itself sends when it scrapes
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                     "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


def scrape(port: int, accept: str | None) -> tuple[str, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if accept is not None:
        request.add_header("Accept", accept)
    with urllib.request.urlopen(request, timeout=10) as resp:
        return resp.headers["Content-Type"], resp.read().decode()


def openmetrics_samples(text: str) -> dict[str, float]:
    """Samples as :func:`samples` keys them, read with the strict OpenMetrics parser."""
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}"] = s.value
    return out


def promtool_parse_openmetrics(text: str, tmp: Path) -> int:
    """Prometheus' OpenMetrics parser reads ``text`` whole; the number of samples it read."""
    stamped = re.sub(r"^([^#\n].*)$", r"\1 1700000000", text, flags=re.M)
    tmp.mkdir(parents=True)
    source = tmp / "metrics.om"
    source.write_text(stamped)
    out = subprocess.run([require_binary("promtool"), "tsdb", "create-blocks-from",
                          "openmetrics", str(source), str(tmp / "blocks")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [line.split() for line in out.stdout.splitlines()[1:] if line.strip()]
    return sum(int(row[4]) for row in rows)


def test_promtools_openmetrics_parser_rejects_a_body_without_eof(tmp_path: Path) -> None:
    """Control: the parser the live tests rely on does insist on ``# EOF``."""
    body = '# HELP a_total x\n# TYPE a counter\na_total{x="1"} 1.0\n'
    assert promtool_parse_openmetrics(body + "# EOF\n", tmp_path / "good") == 1
    with pytest.raises(AssertionError, match="EOF"):
        promtool_parse_openmetrics(body, tmp_path / "bad")


def check_both_formats(port: int, tmp: Path) -> dict[str, float]:
    ctype, text = scrape(port, None)
    assert ctype == TEXT
    assert "# EOF" not in text
    promtool_check_metrics(text)
    for n, accept in enumerate(("application/openmetrics-text", PROMETHEUS_ACCEPT)):
        ctype, om = scrape(port, accept)
        assert ctype.startswith(OPENMETRICS), accept  # "; escaping=..." when versioned
        assert om.endswith("# EOF\n")
        assert openmetrics_samples(om) == samples(text)
        assert promtool_parse_openmetrics(om, tmp / f"om{n}") == len(samples(text))
    assert scrape(port, "text/plain;version=0.0.4")[0] == TEXT
    return samples(text)


@pytest.mark.integration
def test_serve_answers_openmetrics_when_asked(project: Path, tmp_path: Path) -> None:
    write_pipeline(project, PIPELINE)
    (project / "src.txt").write_text("v1\n")
    assert attest("run", cwd=project).returncode == 0
    port = free_port()
    proc = start_attest(project, "serve", "--endpoint", f"127.0.0.1:{port}")
    try:
        assert wait_for_port(port, 20), stop(proc)
        s = check_both_formats(port, tmp_path)
        assert s['attest_pipeline_executions_total{pipeline="demo",status="success"}'] == 1
    finally:
        stop(proc)


@pytest.mark.integration
def test_live_endpoint_answers_openmetrics_when_asked(project: Path, tmp_path: Path) -> None:
    port = free_port()
    live_pipeline(project, "live", port)
    proc = start_attest(project, "run")
    try:
        assert wait_for_port(port, 20), stop(proc)
        assert wait_for(lambda: 'step="first"' in scrape(port, None)[1], 20)
        s = check_both_formats(port, tmp_path)
        key = ('attest_step_duration_seconds_count'
               '{pipeline="live",status="success",step="first"}')
        assert s[key] == 1
        (project / "go").touch()
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
    finally:
        stop(proc)
