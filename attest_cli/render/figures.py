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


def duration(seconds: float) -> str:
    """A run's or step's duration as the progress views and ``attest history`` show it."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.2f}s"
    return f"{int(seconds // 60)}m{seconds % 60:04.1f}s"


def human_duration(seconds: float) -> str:
    """``350ms``, ``1.2s``, ``2m03s``, ``1h02m05s``: the precision a reader needs at each scale."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"
