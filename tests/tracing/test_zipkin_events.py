"""Zipkin export carries span events with their attributes, as OpenTelemetry's Zipkin mapping
does (``opentelemetry-exporter-zipkin-json``'s encoder): each event is an annotation at its
time whose value is ``{"<name>": {<attributes>}}``. The loopback receiver decodes the JSON v2
body a real Zipkin would get."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.support import attest
from tests.tracing.receivers import zipkin_receiver


def test_a_failed_steps_exception_event_reaches_zipkin_with_its_attributes(project: Path
                                                                          ) -> None:
    with zipkin_receiver() as (got, endpoint):
        (project / "attest.yaml").write_text(textwrap.dedent(f"""\
            version: "0.1"
            name: zipped
            steps:
              ok: {{run: 'true'}}
              broken: {{run: 'exit 3', needs: [ok]}}
            tracing:
              enabled: true
              service_name: attest-pipeline
              exporter: {{type: zipkin, endpoint: "{endpoint}"}}
            """))
        proc = attest("run", "--trace", cwd=project)
        assert proc.returncode == 1, proc.stderr
        assert "could not export" not in proc.stderr
        spans = {s["name"]: s for s in got.spans}
    step = spans["step broken"]
    (event,) = [e for e in step["events"] if e["name"] == "exception"]
    assert event["attrs"]["exception.type"] == "StepFailed"
    assert event["attrs"]["process.exit.code"] == 3
    assert "3" in event["attrs"]["exception.message"]
    # stamped when the tracer handled StepFinished: after the start, within seconds of the end
    assert step["start"] <= event["timestamp"] * 1000 <= step["end"] + 10 * 10**9
    root = spans["RUN zipped"]
    (run_event,) = [e for e in root["events"] if e["name"] == "exception"]
    assert run_event["attrs"]["exception.type"] == "PipelineFailed"
    assert run_event["attrs"]["exception.message"] == "pipeline failure: broken"
    assert root["service"] == "attest-pipeline"
    assert spans["step ok"]["events"] == []
