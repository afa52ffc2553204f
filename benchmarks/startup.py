"""Start-up cost of the CLI, whole process as a user runs it (the console script).

- ``attest --help`` and ``--version`` against ``python -c "import typer"``, interleaved.
  Target (issue #3): ratio <= 1.3 - attest's own modules and the heavy libraries must not
  load for help.
- ``attest run`` of a one-step pipeline (``true``, ``--no-cache``) against ``doit`` (the
  Python peer, a one-task ``dodo.py``) and ``make`` (a one-rule Makefile), interleaved: what
  every small run and every CI script's call pays before its first step.

Run: ``.venv/bin/python benchmarks/startup.py [RUNS]``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import compile_attest  # this script's own directory
from scale import Variant, interleaved, med

BIN = Path(sys.executable).parent


def interleaved_medians(cmds: dict[str, list[str]], runs: int, cwd: Path) -> dict[str, float]:
    """Median wall time of each command: ``scale.py``'s interleaved rounds (the order
    reversed every other round, so the machine's drift falls on all of them alike)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    variants = {name: Variant(cmd, cwd, env) for name, cmd in cmds.items()}
    return {name: med(s) for name, s in interleaved(variants, runs, warmup=1).items()}


def one_step_run(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "attest.yaml").write_text(
            'version: "0.1"\nname: one\nsteps:\n  a:\n    run: "true"\n')
        (root / "Makefile").write_text(".PHONY: a\na:\n\t@true\n")
        # a list action: doit runs it without a shell, as attest and make run `true`
        (root / "dodo.py").write_text("def task_a():\n    return {'actions': [['true']], "
                                      "'uptodate': [False], 'verbosity': 0}\n")
        cmds = {"attest run": [str(BIN / "attest"), "run", "-q", "--no-cache"],
                "make": ["make", "-s", "a"]}
        if (BIN / "doit").exists():
            cmds["doit"] = [str(BIN / "doit"), "-v", "0", "a"]
        found = interleaved_medians(cmds, runs, root)
    attest = found["attest run"]
    line = f"attest run, one step          median {attest * 1000:7.1f} ms"
    for peer in ("doit", "make"):
        if peer in found:
            line += f"   {peer} {found[peer] * 1000:.1f} ms ({attest / found[peer]:.2f}x)"
    print(line)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 21
    compile_attest()
    attest = str(BIN / "attest")
    with tempfile.TemporaryDirectory() as tmp:
        found = interleaved_medians(
            {"typer": [sys.executable, "-c", "import typer"], "help": [attest, "--help"],
             "version": [attest, "--version"]}, runs, Path(tmp))
    typer, help_, version = found["typer"], found["help"], found["version"]
    print(f"python -c 'import typer'      median {typer * 1000:7.1f} ms")
    print(f"attest --help                 median {help_ * 1000:7.1f} ms   ratio "
          f"{help_ / typer:.2f} (target <= 1.3)")
    print(f"attest --version              median {version * 1000:7.1f} ms   ratio "
          f"{version / typer:.2f}")
    one_step_run(runs)


if __name__ == "__main__":
    main()
