"""What can go wrong talking to a REAPI server, as two kinds the callers handle differently."""

from __future__ import annotations


class ReapiUnavailable(Exception):
    """The server could not be reached, answered with an error, or took too long.

    The cache degrades to a miss (or fails when ``cache.required``); execution falls back to
    running the step locally (or fails when ``execution.required``)."""


class UnsafeResult(Exception):
    """Something the server sent cannot be trusted: a path leaving the workspace, a size
    above a bound, a blob whose digest does not match. Treated as a miss, never written."""
