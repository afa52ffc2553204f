"""What profiling costs a run: a 50-step pipeline plain, under ``--profile cpu`` and under
``--profile memory``, next to what a user would otherwise type: ``pyinstrument -m attest_cli``
and ``memray run -m attest_cli`` around the same command.

Every variant runs in the same session on the same pipeline (5 chains of 10 ``true`` steps,
``-j 2``, cache off) and the median wall time of each is compared with the plain run.
Run: ``.venv/bin/python benchmarks/profile_overhead.py [STEPS] [RUNS]``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import median_seconds


def write_pipeline(root: Path, n: int, chains: int = 5) -> None:
    lines = ['version: "0.1"', "name: profiled", "steps:"]
    for i in range(n):
        lines += [f"  s{i}:", "    run: 'true'"]
        if i >= chains:
            lines.append(f"    needs: [s{i - chains}]")
    (root / "attest.yaml").write_text("\n".join(lines) + "\n")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    bindir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTEST_")}
    env["XDG_CONFIG_HOME"] = tempfile.mkdtemp()
    run = ["-m", "attest_cli", "-q", "run", "-j", "2", "--no-cache"]
    attest = [sys.executable, *run]
    variants = {
        "plain attest run": attest,
        "attest run --profile cpu": [*attest, "--profile", "cpu", "--profile-output", "c.prof"],
        "pyinstrument -m attest_cli run": [str(bindir / "pyinstrument"), "-r", "session",
                                           "-o", "p.prof", *run],
        "attest run --profile memory": [*attest, "--profile", "memory", "--profile-output",
                                        "m.prof"],
        "memray run -m attest_cli run": [str(bindir / "memray"), "run", "-q", "-f",
                                         "--follow-fork", "-o", "r.prof", *run],
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_pipeline(root, n)
        times = {name: median_seconds(cmd, runs=runs, cwd=root, env=env)
                 for name, cmd in variants.items()}
    base = times["plain attest run"]
    print(f"{n}-step pipeline, -j 2, median of {runs} runs each")
    for name, seconds in times.items():
        print(f"  {name:<34} {seconds * 1000:8.0f} ms   x{seconds / base:.2f} of plain")
    print(f"  --profile cpu vs pyinstrument -m:   "
          f"x{times['attest run --profile cpu'] / times['pyinstrument -m attest_cli run']:.2f}")
    print(f"  --profile memory vs memray run:     "
          f"x{times['attest run --profile memory'] / times['memray run -m attest_cli run']:.2f}")


if __name__ == "__main__":
    main()
