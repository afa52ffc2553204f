"""Fixtures of the cache tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _restore_environ() -> Iterator[None]:
    """Some tests set AWS_* in this process for boto3; never leak them into later tests
    (which, under pytest-xdist, are whichever tests the worker runs next)."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
