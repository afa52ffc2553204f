"""Finding the run features: the ``attest.run_features`` entry points, built-ins included.

attest's own features (cache, tracing, metrics, attestation, JUnit) are declared in its
``pyproject.toml`` exactly as a third-party package declares one, so there is one way in.
They are attached in ``order`` (then name), so the order is deterministic whatever order
the installed distributions are listed in. A feature that cannot be loaded, or is not a
:class:`~attest_cli.runner.features.RunFeature`, is one warning and the run goes on
without it. Entry points are read only when a run starts (never for ``attest --help``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from attest_cli.runner.features import ENTRY_POINT_GROUP, THIRD_PARTY_ORDER, RunFeature

log = logging.getLogger("attest.pipeline")

BUILTIN_PREFIX = "attest_cli."


@dataclass(frozen=True)
class LoadedFeature:
    name: str
    order: int
    feature: RunFeature
    builtin: bool  # attest's own: an error in attach is attest's error, not a warning


def load_features() -> list[LoadedFeature]:
    """Every installed run feature, in attach order."""
    out: list[LoadedFeature] = []
    seen: set[str] = set()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in seen:  # the same distribution found twice on the path
            continue
        seen.add(ep.name)
        loaded = _load(ep)
        if loaded is not None:
            out.append(loaded)
    return sorted(out, key=lambda f: (f.order, f.name))


def _load(ep: EntryPoint) -> LoadedFeature | None:
    try:
        obj = ep.load()
        feature = obj() if isinstance(obj, type) else obj
        if not callable(getattr(feature, "attach", None)):
            raise TypeError("not a run feature (it has no attach(run))")
        order = getattr(feature, "order", THIRD_PARTY_ORDER)
        if not isinstance(order, int):
            raise TypeError(f"order {order!r} is not an integer")
    except Exception as exc:
        log.warning("run feature %s (%s) failed to load and is skipped: %s", ep.name, ep.value,
                    exc, exc_info=log.isEnabledFor(logging.DEBUG))
        return None
    return LoadedFeature(name=ep.name, order=order, feature=feature,
                         builtin=ep.value.startswith(BUILTIN_PREFIX))
