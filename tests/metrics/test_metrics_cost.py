"""The live endpoint's constant cost: a run that nobody scrapes or probes never loads
prometheus_client, asyncio (the event loop starts at the first connection) nor the health
plug-ins. Scraped runs are covered by tests/test_metrics.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import free_port, write_pipeline

PROBE = """
import sys, threading
from attest_cli.cli.entry import main
main_thread_imports = []
import builtins
real_import = builtins.__import__
def spy(name, *args, **kwargs):
    if threading.current_thread() is threading.main_thread() and name == 'asyncio':
        main_thread_imports.append(name)
    return real_import(name, *args, **kwargs)
builtins.__import__ = spy
sys.argv = ['attest', 'run']
try:
    main()
except SystemExit:
    pass
builtins.__import__ = real_import
print('PROM', sorted(m for m in sys.modules if m.startswith('prometheus_client'))[:1])
print('ASYNCIO_ON_MAIN', main_thread_imports[:1])
print('ASYNCIO_LOADED', 'asyncio' in sys.modules)
"""


def test_an_unscraped_live_endpoint_loads_no_prometheus_client(project: Path) -> None:
    write_pipeline(project, "steps:\n  a: {run: 'true'}\n")
    env = {"ATTEST_MONITORING__PROMETHEUS__ENABLED": "true",
           "ATTEST_MONITORING__PROMETHEUS__ENDPOINT": f"127.0.0.1:{free_port()}",
           "XDG_CONFIG_HOME": str(project / ".xdg"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=project, capture_output=True,
                         text=True, timeout=60, env=env)
    assert "serving live metrics" in out.stderr and "a: true" in out.stderr, out.stderr
    assert "PROM []" in out.stdout, out.stdout + out.stderr
    assert "ASYNCIO_ON_MAIN []" in out.stdout, out.stdout + out.stderr
    assert "ASYNCIO_LOADED False" in out.stdout, out.stdout + out.stderr  # nobody connected
