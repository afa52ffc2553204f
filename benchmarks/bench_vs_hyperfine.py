"""`attest benchmark pipeline` against hyperfine, the tool a user would otherwise reach for.

A user without ``attest benchmark`` would time ``attest run --no-cache`` with hyperfine
(one number per run, interpreter start-up included) and, to see per-step figures, time each
step's command separately. This script does both in the same session and prints:

* accuracy: attest's per-step mean / hyperfine's mean of the same command, for wall time
  and for CPU time (user + system; this one is insensitive to other load on the machine);
* what the total measures: attest's in-process total vs hyperfine's ``attest run``;
* cost: wall time of getting per-step statistics each way.

Run: ``.venv/bin/python benchmarks/bench_vs_hyperfine.py [--runs 10]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEPS = {"fetch": "sleep 0.1", "build": "sleep 0.2",
         "test": "python3 -c 'sum(i * i for i in range(1_500_000))'"}


def pipeline_yaml() -> str:
    lines = ['version: "0.1"', "name: bench", "steps:"]
    previous = None
    for name, cmd in STEPS.items():
        lines += [f"  {name}:", f"    run: {json.dumps(cmd)}"]
        if previous:
            lines.append(f"    needs: [{previous}]")
        previous = name
    return "\n".join(lines) + "\n"


def timed(cmd: list[str], cwd: Path) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, proc.stdout


def hyperfine_mean(hyperfine: str, command: str, runs: int, cwd: Path) -> tuple[float, float]:
    """Mean wall and mean CPU (user + system) seconds."""
    out = cwd / "hf.json"
    subprocess.run([hyperfine, "-N", "--warmup", "1", "--runs", str(runs), "--export-json",
                    str(out), command], cwd=cwd, check=True, capture_output=True)
    result = json.loads(out.read_text())["results"][0]
    return float(result["mean"]), float(result["user"]) + float(result["system"])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    hyperfine = shutil.which("hyperfine")
    if not hyperfine:
        print("hyperfine is not installed", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "attest.yaml").write_text(pipeline_yaml())
        attest = [sys.executable, "-m", "attest_cli"]
        ours_wall, out = timed([*attest, "-q", "benchmark", "pipeline", "-n", str(args.runs),
                                "--format", "json"], root)
        ours = json.loads(out)["statistics"]
        t0 = time.perf_counter()
        theirs = {name: hyperfine_mean(hyperfine, f"sh -c {json.dumps(cmd)}", args.runs, root)
                  for name, cmd in STEPS.items()}
        run_cmd = " ".join([*attest, "-q", "run", "--no-cache"])
        theirs_total = hyperfine_mean(hyperfine, run_cmd, args.runs, root)[0]
        theirs_wall = time.perf_counter() - t0
    print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'step':<8} {'wall attest':>12} {'hyperfine':>10} {'ratio':>6}  "
          f"{'cpu attest':>11} {'hyperfine':>10} {'ratio':>6}")
    for name in STEPS:
        wall, cpu = ours["steps"][name]["wall"]["mean"], ours["steps"][name]["cpu"]["mean"]
        hwall, hcpu = theirs[name]
        print(f"{name:<8} {wall:>11.4f}s {hwall:>9.4f}s {wall / hwall:>6.3f}  "
              f"{cpu:>10.4f}s {hcpu:>9.4f}s {cpu / hcpu:>6.3f}")
    total = ours["total"]["wall"]["mean"]
    print(f"{'total':<8} {total:>11.4f}s {theirs_total:>11.4f}s {total / theirs_total:>7.3f}"
          "   (hyperfine: `attest run --no-cache`, interpreter start-up included)")
    print(f"time to per-step statistics: attest benchmark {ours_wall:.1f}s, hyperfine "
          f"{theirs_wall:.1f}s (ratio {ours_wall / theirs_wall:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
