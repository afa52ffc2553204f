"""Load ``attest.yaml`` into a :class:`Pipeline`, with one located error per problem.

Errors name the file, the line and the key (``attest.yaml:12: steps.lint.neds: unknown
key (did you mean 'needs'?)``) because users fix files in an editor, line by line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from attest_cli.config.layers import PIPELINE_SECTIONS
from attest_cli.config.schema import parse_duration, suggest
from attest_cli.errors import InputError
from attest_cli.pipeline.confine import check_declarations
from attest_cli.pipeline.graph import find_cycle
from attest_cli.pipeline.model import Pipeline, Step
from attest_cli.record import fields_of
from attest_cli.yamlfile import LocatedYAML, load_yaml

TOP_KEYS = {"version", "name", "env", "steps"} | PIPELINE_SECTIONS
STEP_KEYS = {"run", "needs", "inputs", "outputs", "env", "timeout", "cache", "cache_env",
             "cache_exclude_env", "secrets", "remote", "platform", "do_not_cache"}
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def load_pipeline(path: str | Path, *, doc: LocatedYAML | None = None) -> Pipeline:
    """Parse and validate the pipeline at ``path`` (``doc`` if already read).

    A doc kept from an earlier run carries what that run built from the same bytes
    (``doc.prepared``, see :func:`prepared_form`): the steps are rebuilt from it without
    validating them again (that was ~40 ms of a 5,000-step no-op run)."""
    p = Path(path)
    doc = doc or load_yaml(p)
    if doc.prepared is not None:
        kept = _from_prepared(p, doc)
        if kept is not None:
            return kept
    data = doc.data
    if data is None:
        raise InputError("the file is empty; expected a mapping with 'steps'", path=doc.path)
    if not isinstance(data, dict):
        raise InputError("expected a mapping at the top level", path=doc.path, line=1)
    for key in data:
        if str(key) not in TOP_KEYS:
            raise doc.error(f"unknown key{suggest(str(key), TOP_KEYS)}", str(key))
    version = data.get("version", "0.1")
    if not isinstance(version, str | int | float) or isinstance(version, bool):
        raise doc.error("expected a version string such as \"0.1\"", "version")
    name = data.get("name", p.resolve().parent.name)
    if not isinstance(name, str) or not name.strip():
        raise doc.error("expected a non-empty string", "name")
    env = _env_map(doc, data.get("env", {}), ("env",))
    if "steps" not in data:
        raise InputError("missing 'steps'", path=doc.path, line=1, key="steps")
    raw_steps = data["steps"]
    steps: dict[str, Step] = {}
    items: list[tuple[str, Any, tuple[str, ...]]]
    if isinstance(raw_steps, dict):
        items = [(str(k), v, ("steps", str(k))) for k, v in raw_steps.items()]
    elif isinstance(raw_steps, list):
        items = []
        for i, entry in enumerate(raw_steps):
            where = ("steps", str(i))
            if not isinstance(entry, dict) or "name" not in entry:
                raise doc.error("each list entry needs a 'name'", *where)
            body = {k: v for k, v in entry.items() if k != "name"}
            items.append((str(entry["name"]), body, where))
    else:
        raise doc.error("expected a mapping of step name to step (or a list)", "steps")
    if not items:
        raise doc.error("the pipeline has no steps", "steps")
    for step_name, body, item_where in items:
        if step_name in steps:
            raise doc.error(f"duplicate step name '{step_name}'", *item_where)
        steps[step_name] = _step(doc, step_name, body, item_where)
        check_declarations(doc, steps[step_name])
    for step in steps.values():
        for need in step.needs:
            if need not in steps:
                raise doc.error(f"unknown step '{need}'{suggest(need, steps)}",
                                *_where(doc, step, "needs"))
    cycle = find_cycle({n: s.needs for n, s in steps.items()})
    if cycle:
        first = steps[cycle[0]]
        raise doc.error("dependency cycle: " + " -> ".join([*cycle, cycle[0]]),
                        *_where(doc, first, "needs"))
    return Pipeline(name=name.strip(), path=p, root=p.resolve().parent, steps=steps,
                    version=str(version), env=env, source_digest=doc.digest)


def _where(doc: LocatedYAML, step: Step, key: str) -> tuple[str, ...]:
    for path in doc.lines:
        if len(path) == 3 and path[0] == "steps" and path[2] == key:
            owner = path[1]
            if owner == step.name or (owner.isdigit() and doc.lines.get(path[:2]) == step.line):
                return path
    return ("steps", step.name)


def _step(doc: LocatedYAML, name: str, body: Any, where: tuple[str, ...]) -> Step:
    if not _NAME.match(name):
        raise doc.error("step names use letters, digits, '_', '-' and '.'", *where)
    if isinstance(body, str):
        body = {"run": body}
    if not isinstance(body, dict):
        raise doc.error("expected a mapping with at least 'run'", *where)
    for key in body:
        if str(key) not in STEP_KEYS:
            raise doc.error(f"unknown key{suggest(str(key), STEP_KEYS)}", *where, str(key))
    if "run" not in body:
        raise doc.error("missing 'run' (the command to execute)", *where)
    run = body["run"]
    if not isinstance(run, str) or not run.strip():
        raise doc.error("expected a non-empty command string", *where, "run")
    timeout = body.get("timeout")
    if timeout is not None:
        try:
            timeout = parse_duration(timeout)
        except ValueError as exc:
            raise doc.error(str(exc), *where, "timeout") from None
        if timeout <= 0:
            raise doc.error("must be greater than 0", *where, "timeout")
    cache = body.get("cache", True)
    remote = body.get("remote", True)
    do_not_cache = body.get("do_not_cache", False)
    if type(cache) is not bool or type(remote) is not bool or type(do_not_cache) is not bool:
        for key, value in (("cache", cache), ("remote", remote), ("do_not_cache", do_not_cache)):
            if not isinstance(value, bool):
                raise doc.error("expected true or false", *where, key)
    # keys a step does not have cost nothing (most steps have two or three of the ten)
    return Step(
        name=name, run=run,
        needs=_names(doc, body["needs"], (*where, "needs"), _NAME, "step name")
        if "needs" in body else (),
        inputs=_strings(doc, body["inputs"], (*where, "inputs")) if "inputs" in body else (),
        outputs=_strings(doc, body["outputs"], (*where, "outputs"))
        if "outputs" in body else (),
        env=_env_map(doc, body["env"], (*where, "env")) if "env" in body else {},
        timeout=timeout, cache=cache, remote=remote, do_not_cache=do_not_cache,
        platform=_platform(doc, body["platform"], (*where, "platform"))
        if "platform" in body else {},
        cache_env=_names(doc, body["cache_env"], (*where, "cache_env"), _ENV_NAME,
                         "variable name") if "cache_env" in body else (),
        cache_exclude_env=_names(doc, body["cache_exclude_env"], (*where, "cache_exclude_env"),
                                 _ENV_NAME, "variable name")
        if "cache_exclude_env" in body else (),
        secrets=_names(doc, body["secrets"], (*where, "secrets"), _ENV_NAME, "variable name")
        if "secrets" in body else (),
        line=doc.lines.get(where) or doc.line(*where), location=where,
    )


def _strings(doc: LocatedYAML, value: Any, where: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise doc.error("expected a list of strings", *where)
    if not all(type(item) is str and item for item in value):
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item:
                raise doc.error("expected a non-empty string", *where, str(i))
    return tuple(value)


def _names(doc: LocatedYAML, value: Any, where: tuple[str, ...], pattern: re.Pattern[str],
           what: str) -> tuple[str, ...]:
    items = _strings(doc, value, where)
    for i, item in enumerate(items):
        if not pattern.match(item):
            raise doc.error(f"'{item}' is not a valid {what}", *where, str(i))
    return items


def _env_map(doc: LocatedYAML, value: Any, where: tuple[str, ...]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise doc.error("expected a mapping of NAME: value", *where)
    out: dict[str, str] = {}
    for k, v in value.items():
        key = str(k)
        if not _ENV_NAME.match(key):
            raise doc.error(f"'{key}' is not a valid variable name", *where, key)
        if isinstance(v, dict | list) or v is None:
            raise doc.error("expected a string, number or boolean", *where, key)
        out[key] = ("true" if v else "false") if isinstance(v, bool) else str(v)
    return out


def _platform(doc: LocatedYAML, value: Any, where: tuple[str, ...]) -> dict[str, str]:
    """REAPI platform properties: a mapping of non-empty names to scalar values."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise doc.error("expected a mapping of property: value (e.g. OSFamily: linux)", *where)
    out: dict[str, str] = {}
    for k, v in value.items():
        key = str(k)
        if not key.strip():
            raise doc.error("a platform property needs a name", *where)
        if isinstance(v, dict | list) or v is None:
            raise doc.error("expected a string, number or boolean", *where, key)
        out[key] = ("true" if v else "false") if isinstance(v, bool) else str(v)
    return out


_PREPARED = 1  # the layout of prepared_form's tuples (a new one is a miss)
_STEP_FIELDS = fields_of(Step)


def prepared_form(pipeline: Pipeline, doc: LocatedYAML) -> tuple[Any, ...]:
    """The validated pipeline as plain values, kept with the parse of the same bytes. A
    name the file does not give is the directory's: rebuilt from the path, not kept."""
    given = isinstance(doc.data, dict) and "name" in doc.data
    return (_PREPARED, given, pipeline.name if given else None, pipeline.version,
            pipeline.env, tuple(tuple(getattr(step, f) for f in _STEP_FIELDS)
                                for step in pipeline.steps.values()))


def _kept_step(row: tuple[Any, ...]) -> Step:
    """``Step(*row)`` without ``Step.__init__``: its ``__dict__`` filled from the row at
    once (the frozen dataclass's ``__init__``, an ``object.__setattr__`` per field, was half
    of rebuilding 5,000 kept steps). The row was made by :func:`prepared_form` from a
    validated step, so only its length is checked here."""
    step = object.__new__(Step)
    step.__dict__.update(zip(_STEP_FIELDS, row, strict=True))
    return step


def _from_prepared(p: Path, doc: LocatedYAML) -> Pipeline | None:
    """The pipeline :func:`prepared_form` describes; None if it is not one (a full load)."""
    try:
        tag, given, name, version, env, rows = doc.prepared
        if tag != _PREPARED:
            return None
        if not given:
            name = p.resolve().parent.name
        if not (isinstance(name, str) and name.strip() and isinstance(env, dict)):
            return None
        steps = {row[0]: _kept_step(row) for row in rows}
    except (TypeError, ValueError):
        return None
    return Pipeline(name=name.strip(), path=p, root=p.resolve().parent, steps=steps,
                    version=str(version), env=env, source_digest=doc.digest)
