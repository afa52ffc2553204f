"""The layering rules of docs/architecture.md, checked on the import graph (``ast``).

- no module outside ``runner/`` and ``cli/`` imports ``runner.service`` (the composition
  root of a run);
- a run feature imports nothing of ``runner/`` but ``runner.features``;
- the engine imports no feature (nor the runner);
- one status writer: outside ``runner/service.py`` nothing assigns a run report's
  ``status`` or ``exit_code`` (``runner/records.py`` marks *dead* runs ``abandoned``).
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

from tests.support import REPO

PACKAGE = REPO / "attest_cli"


def _modules() -> Iterator[tuple[str, Path, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(REPO).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path, ast.parse(path.read_text(encoding="utf-8"))


def _imports(name: str, tree: ast.Module) -> set[str]:
    """Every module a module imports, type-checking-only imports included."""
    package = name if name.endswith("__init__") else name.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


def _feature_modules() -> set[str]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    group = data["project"]["entry-points"]["attest.run_features"]
    return {value.split(":")[0] for value in group.values()} | {"attest_cli.profiling.session"}


def test_only_runner_and_cli_import_the_run_service() -> None:
    offenders = [name for name, _p, tree in _modules()
                 if not name.startswith(("attest_cli.runner", "attest_cli.cli"))
                 and "attest_cli.runner.service" in _imports(name, tree)]
    assert offenders == []


def test_features_import_only_runner_features_from_the_runner() -> None:
    features = _feature_modules()
    assert "attest_cli.cache.runhook" in features
    bad = {name: sorted(i for i in _imports(name, tree)
                        if i.startswith("attest_cli.runner")
                        and not i.startswith("attest_cli.runner.features"))
           for name, _p, tree in _modules() if name in features}
    assert {k: v for k, v in bad.items() if v} == {}


def test_the_engine_imports_no_feature_and_not_the_runner() -> None:
    # attest_cli.deadline: an interrupt also cancels network calls in flight (no feature);
    # attest_cli.compactjson: the report's encoder (a leaf, like jsonfile);
    # attest_cli.record: the plain value classes of the run's path (a leaf)
    allowed = ("attest_cli.engine", "attest_cli.pipeline", "attest_cli.errors",
               "attest_cli.jsonfile", "attest_cli.deadline", "attest_cli.compactjson",
               "attest_cli.record")
    bad = {name: sorted(i for i in _imports(name, tree)
                        if i.startswith("attest_cli") and not i.startswith(allowed))
           for name, _p, tree in _modules() if name.startswith("attest_cli.engine")}
    assert {k: v for k, v in bad.items() if v} == {}


def test_one_status_writer() -> None:
    writers = []
    for name, path, tree in _modules():
        if name.startswith("attest_cli.health"):  # a HealthReport's status, not a run's
            continue
        for node in ast.walk(tree):
            targets = (node.targets if isinstance(node, ast.Assign)
                       else [node.target] if isinstance(node, ast.AugAssign | ast.AnnAssign)
                       else [])
            for target in targets:
                for t in (target.elts if isinstance(target, ast.Tuple) else [target]):
                    if (isinstance(t, ast.Attribute) and t.attr in ("status", "exit_code")
                            and "rep" in ast.unparse(t.value)):
                        writers.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert all(w.startswith(("attest_cli/runner/service.py", "attest_cli/runner/records.py"))
               for w in writers), writers
    assert any(w.startswith("attest_cli/runner/service.py") for w in writers)


def test_the_run_service_imports_no_feature() -> None:
    """Features reach a run only through their entry points, never by the service's import.
    (``--dry-run``'s plan asks the cache's predictor what a run would do: not a feature.)"""
    packages = {m.rsplit(".", 1)[0] for m in _feature_modules()} - {"attest_cli.profiling"}
    (tree,) = [t for name, _p, t in _modules() if name == "attest_cli.runner.service"]
    assert sorted(i for i in _imports("attest_cli.runner.service", tree)
                  if i.startswith(tuple(packages))
                  and not i.startswith("attest_cli.cache.predict")) == []
