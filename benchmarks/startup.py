"""Start-up cost of the CLI: `attest --help` against `python -c "import typer"`.

Target (issue #3): ratio <= 1.3 — attest's own modules and the heavy libraries must not load
for --help. Run: `.venv/bin/python benchmarks/startup.py`.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import median_seconds


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 21
    py = sys.executable
    typer = median_seconds([py, "-c", "import typer"], runs=runs)
    help_ = median_seconds([py, "-m", "attest_cli", "--help"], runs=runs)
    version = median_seconds([py, "-m", "attest_cli", "--version"], runs=runs)
    print(f"python -c 'import typer'   median {typer * 1000:7.1f} ms")
    print(f"attest --help               median {help_ * 1000:7.1f} ms   ratio {help_ / typer:.2f}"
          " (target <= 1.3)")
    print(f"attest --version            median {version * 1000:7.1f} ms   ratio "
          f"{version / typer:.2f}")


if __name__ == "__main__":
    main()
