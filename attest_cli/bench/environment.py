"""Where a benchmark ran: two results are only comparable when these facts agree."""

from __future__ import annotations

import os
import platform
import socket
from pathlib import Path
from typing import Any

from attest_cli import __version__
from attest_cli.bench import gitref


def cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def capture(project: Path) -> dict[str, Any]:
    """The environment of a benchmark of the project at ``project``."""
    return {
        "attest_version": __version__,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "os": f"{platform.system()} {platform.release()}",
        "platform": platform.platform(),
        "machine": platform.machine(),
        "hostname": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "git": gitref.state(project),
        "load_average": load_average(),
    }


# The facts whose difference makes two results incomparable, with how to say so.
COMPARABLE_KEYS = {"hostname": "machine", "machine": "architecture", "cpu_model": "CPU model",
                   "cpu_count": "CPU count", "python": "Python version"}
