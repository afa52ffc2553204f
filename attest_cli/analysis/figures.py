"""How figures read in every report: seconds, bytes and shares, short and unambiguous."""

from __future__ import annotations


def seconds(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}s"
    if value >= 1:
        return f"{value:.2f}s"
    return f"{value * 1000:.1f}ms"


def size(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}GiB"


def share(value: float) -> str:
    return f"{value * 100:.1f}%"


def location(file: str, line: int | None) -> str:
    return f"{file}:{line}" if line else file
