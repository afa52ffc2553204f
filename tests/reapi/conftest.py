"""Fixtures of the REAPI tests (real servers: :mod:`tests.reapi.servers`)."""

from tests.reapi.servers import black_hole, buildgrid, recording_proxy, shared_buildgrid

__all__ = ["black_hole", "buildgrid", "recording_proxy", "shared_buildgrid"]
