"""Per-step overhead of the executor against `make -j1` running the same trivial commands.

A chain of N steps (each `true`, each needing the previous) under `attest run -j1 --no-cache`
and the same chain as N make targets. Per-step overhead = (time for N steps - time for 1
step) / (N - 1), which removes each tool's start-up. Target (issue #3): attest <= 2x make.
Run: `.venv/bin/python benchmarks/step_overhead.py [N]`.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import median_seconds


def write_chain(root: Path, n: int) -> None:
    lines = ['version: "0.1"', "name: chain", "steps:"]
    for i in range(n):
        lines.append(f"  s{i}:")
        lines.append("    run: 'true'")
        if i:
            lines.append(f"    needs: [s{i - 1}]")
    (root / "attest.yaml").write_text("\n".join(lines) + "\n")
    mk = [".PHONY: " + " ".join(f"s{i}" for i in range(n)), f"all: s{n - 1}"]
    for i in range(n):
        mk.append(f"s{i}:{' s' + str(i - 1) if i else ''}\n\t@true")
    (root / "Makefile").write_text("\n".join(mk) + "\n")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    if not shutil.which("make"):
        sys.exit("make is not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTEST_")}
    env["XDG_CONFIG_HOME"] = tempfile.mkdtemp()
    attest = [sys.executable, "-m", "attest_cli", "-q", "run", "-j", "1", "--no-cache"]
    results = {}
    with tempfile.TemporaryDirectory() as big, tempfile.TemporaryDirectory() as one:
        write_chain(Path(big), n)
        write_chain(Path(one), 1)
        for name, cmd in (("make", ["make", "-s", "-j1", "all"]), ("attest", attest)):
            t_n = median_seconds(cmd, runs=runs, cwd=Path(big), env=env)
            t_1 = median_seconds(cmd, runs=runs, cwd=Path(one), env=env)
            results[name] = (t_n, t_1, (t_n - t_1) / (n - 1))
    for name, (t_n, t_1, per) in results.items():
        print(f"{name:<7} {n} steps {t_n * 1000:8.1f} ms   1 step {t_1 * 1000:7.1f} ms   "
              f"per-step overhead {per * 1000:6.2f} ms")
    ratio = results["attest"][2] / results["make"][2]
    print(f"ratio attest/make per-step overhead: {ratio:.2f} (target <= 2.0)")


if __name__ == "__main__":
    main()
