"""Where a step's declared paths may point: inside the project, and never at attest's state.

Checked when the pipeline is loaded, so a bad declaration is one located line and exit 2
before any step runs. ``outputs: ["./"]`` would otherwise archive ``.attest/`` - the private
signing key, the history, the cache itself - into the (possibly shared, remote) cache, and
a hostile cache entry for such a step could write into it on a restore.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from attest_cli.config.layers import Settings
from attest_cli.errors import InputError
from attest_cli.pathspec import STATE_DIR, check_relative, is_glob, may_reach
from attest_cli.pipeline.model import Pipeline, Step
from attest_cli.yamlfile import LocatedYAML

# configuration keys naming files or directories attest keeps its state in
STATE_KEYS = ("cache.dir", "history.path", "signing.key")


def check_declarations(doc: LocatedYAML, step: Step) -> None:
    """Inputs and outputs are relative paths inside the project; outputs spare ``.attest/``."""
    for key in ("inputs", "outputs"):
        for i, pattern in enumerate(getattr(step, key)):
            try:
                check_relative(pattern)
            except InputError as exc:
                raise doc.error(exc.message, *step.location, key, str(i)) from None
    _check_outputs(doc, step, _STATE)


_STATE = {STATE_DIR: f"attest's state directory {STATE_DIR}/ (keys, history, cache, logs)"}


def check_state_outputs(doc: LocatedYAML, pipeline: Pipeline, settings: Settings,
                        state_dir: Path) -> None:
    """No output may reach a state path the configuration moved inside the project."""
    places = {"state directory": state_dir} | {
        key: Path(str(settings.get(key))).expanduser() for key in STATE_KEYS
        if settings.get(key)}
    protected: dict[str, str] = {}
    for name, path in places.items():
        full = path if path.is_absolute() else state_dir.parent / path
        try:
            rel = full.resolve().relative_to(pipeline.root.resolve()).as_posix()
        except ValueError:
            continue  # outside the project: no declaration can reach it
        if rel != ".":
            protected[rel] = f"{name} ({rel})"
    clear: dict[str, bool] = {}  # first components known to start no protected path
    for step in pipeline.steps.values():
        _check_outputs(doc, step, protected, clear)


def _check_outputs(doc: LocatedYAML, step: Step, protected: Mapping[str, str],
                   clear: dict[str, bool] | None = None) -> None:
    for i, pattern in enumerate(step.outputs):
        for what in _reached(pattern, protected, clear):
            raise doc.error(f"outputs may not cover {what}: '{pattern}' would store it in "
                            "the cache and let a cache entry overwrite it; name the "
                            "directories the step writes instead (e.g. 'dist/')",
                            *step.location, "outputs", str(i))


def _reached(pattern: str, protected: Mapping[str, str],
             clear: dict[str, bool] | None = None) -> Iterable[str]:
    """What each protected path the pattern reaches is (for the message).

    A literal pattern whose first component starts no protected path reaches none: that
    answer, taken first, saves a :func:`may_reach` per output and protected path on every
    load (a tenth of loading a 5,000-step pipeline)."""
    if not is_glob(pattern):
        head = pattern.split("/", 1)[0]
        known = clear.get(head) if clear is not None else None
        if known is None:
            known = head not in ("", ".") and all(not t.startswith(head) for t in protected)
            if clear is not None:
                clear[head] = known  # the steps of a pipeline share a few heads
        if known:
            return ()  # (a prefix test: a cheap superset of "its first component")
    return (what for target, what in protected.items() if may_reach(pattern, target))
