"""Per-step overhead of ``attest run --remote-exec`` against BuildGrid's own ``bgd execute``.

Both send the same trivial action (``/bin/sh -c 'cat src.txt > out.txt'`` over an input root
holding ``src.txt``, output ``out.txt`` fetched back) to the same BuildGrid server, run by
the same bot (tests/reapi/bot.py), with the Action Cache out of the way (``bgd execute``
without ``-c``; the attest step says ``do_not_cache: true``), so every run really executes.
Whole-process wall times (interpreter start-up included), medians:

1. one action: ``attest run --remote-exec`` of a one-step pipeline vs one ``bgd execute
   command``;
2. the marginal cost of a step: (``attest run`` of 10 independent steps, ``-j 1``, minus the
   one-step run) / 9, against one ``bgd execute command``.

Each line prints the ratio (attest / bgd; below 1 means attest is cheaper). Needs the dev
extra (buildgrid, psycopg2) and PostgreSQL (initdb). Usage:

    .venv/bin/python benchmarks/remote_exec.py [--runs 7]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import median_seconds  # noqa: E402

from tests.reapi.buildgrid_server import (  # noqa: E402
    _bgd,
    start_bot,
    start_buildgrid,
    start_postgres,
)

SCRIPT = "cat src.txt > out.txt"


def pipeline(root: Path, steps: int, endpoint: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "src.txt").write_text("hello\n")
    body = "".join(textwrap.dedent(f"""\
          s{i}:
            run: cat src.txt > out{i}.txt
            inputs: [src.txt]
            outputs: [out{i}.txt]
            do_not_cache: true
        """) for i in range(steps))
    (root / "attest.yaml").write_text("name: bench\nsteps:\n" + textwrap.indent(body, "  "))
    (root / ".attest").mkdir(exist_ok=True)
    (root / ".attest" / "config.yaml").write_text(f"execution:\n  endpoint: {endpoint}\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="attest-remote-bench-"))
    pg = start_postgres()
    grid = start_buildgrid(pg, work / "bgd")
    try:
        start_bot(grid, "bench-bot")
        one, ten = work / "one", work / "ten"
        pipeline(one, 1, grid.endpoint)
        pipeline(ten, 10, grid.endpoint)
        inroot = work / "inroot"
        inroot.mkdir()
        (inroot / "src.txt").write_text("hello\n")
        attest = [sys.executable, "-m", "attest_cli", "run", "--remote-exec", "--no-cache",
                  "-j", "1"]
        bgd = [_bgd(), "execute", "--remote", f"http://{grid.target}", "command",
               "--output-file", "out.txt", "--output-directory", str(work / "got"),
               str(inroot), "--", "/bin/sh", "-c", SCRIPT]
        t_bgd = median_seconds(bgd, runs=args.runs)
        t_one = median_seconds(attest, runs=args.runs, cwd=one)
        t_ten = median_seconds(attest, runs=args.runs, cwd=ten)
        per_step = (t_ten - t_one) / 9
        print(f"bgd execute command (one action, whole process): {t_bgd * 1000:8.1f} ms")
        print(f"attest run --remote-exec, 1 step (whole process): {t_one * 1000:8.1f} ms"
              f"   ratio attest/bgd = {t_one / t_bgd:.2f}")
        print(f"attest run --remote-exec, 10 steps -j 1:          {t_ten * 1000:8.1f} ms")
        print(f"attest marginal cost of one more step:            {per_step * 1000:8.1f} ms"
              f"   ratio attest/bgd = {per_step / t_bgd:.2f}")
    finally:
        grid.stop()
        pg.stop()
        shutil.rmtree(pg.root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
