"""Cache hashing and restore against the tools a user would otherwise reach for.

Three comparisons, each printed as a ratio (>1 means attest is faster):

1. cold hashing of N MiB over F files (default 1024 MiB, 10,000 files) by attest's stat
   index (no entries yet: every file read and hashed) vs one ``b3sum`` process given all
   files;
2. a re-run with nothing changed: computing the step's key again (expand the globs, ``lstat``
   every input, look each signature up) vs ``git status`` on the same tree; plus the same
   through the CLI: ``attest run`` of a cached step over those inputs minus ``attest run``
   of a step without inputs (the start-up), i.e. the time beyond start-up;
3. restoring an R MiB output tree (default 200 MiB) from the local cache, every blob
   digest-checked, vs ``cp -r`` of the same tree.

Everything runs on the same machine in the same invocation, page cache warm. Usage:

    .venv/bin/python benchmarks/cache_hashing.py [--total-mib 1024] [--files 10000]
        [--restore-mib 200] [--repeat 5] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from attest_cli.cache import store as entries  # noqa: E402
from attest_cli.cache.backends.local import LocalBackend  # noqa: E402
from attest_cli.cache.outputs import describe  # noqa: E402
from attest_cli.cache.restore import restore_files  # noqa: E402
from attest_cli.cache.statindex import StatIndex  # noqa: E402
from attest_cli.pathspec import expand  # noqa: E402


def median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def make_tree(root: Path, total_bytes: int, files: int) -> None:
    """``files`` files of random content in 100 directories, ``total_bytes`` in all."""
    size = total_bytes // files
    chunk = os.urandom(size + 4096)
    old = time.time() - 3600  # older than the racy window, as a checked-out tree would be
    for i in range(files):
        d = root / f"d{i % 100:02d}"
        d.mkdir(parents=True, exist_ok=True)
        p = d / f"f{i:05d}.bin"
        off = i % 4096
        p.write_bytes(i.to_bytes(4, "big") + chunk[off:off + size - 4])
        os.utime(p, (old, old))


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--total-mib", type=int, default=1024)
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--restore-mib", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    b3sum = shutil.which("b3sum")
    git = shutil.which("git")
    base = Path(tempfile.mkdtemp(prefix="attest-bench-", dir=args.workdir))
    try:
        project = base / "proj"
        data = project / "data"
        print(f"creating {args.total_mib} MiB in {args.files} files under {data} ...",
              file=sys.stderr)
        make_tree(data, args.total_mib * 2**20, args.files)
        rels = expand(project, ["data/**"])
        paths = [str(project / r) for r in rels]
        print(f"\n{len(rels)} files, {args.total_mib} MiB (page cache warm)")

        # 1. cold hashing ------------------------------------------------------------------
        def attest_cold() -> None:
            StatIndex(None).scan(project, rels)

        t_attest = median_time(attest_cold, args.repeat)
        print(f"cold hash   attest (stat index empty):           {t_attest * 1000:8.1f} ms  "
              f"{args.total_mib / t_attest:7.0f} MiB/s")
        if b3sum:
            def b3() -> None:
                subprocess.run([b3sum, "--no-names", *paths], check=True,
                               stdout=subprocess.DEVNULL)
            t_b3 = median_time(b3, args.repeat)
            print(f"cold hash   b3sum (one process, all files):      {t_b3 * 1000:8.1f} ms  "
                  f"{args.total_mib / t_b3:7.0f} MiB/s")
            print(f"  ratio b3sum/attest: {t_b3 / t_attest:.2f}x")
        else:
            print("  b3sum not installed: no comparison")

        # 2. re-run with nothing changed ---------------------------------------------------
        index_path = base / "index.json"
        warm = StatIndex(index_path)
        warm.scan(project, rels)
        warm.save()

        def attest_warm() -> None:
            idx = StatIndex(index_path)
            idx.scan(project, expand(project, ["data/**"]))
            assert idx.hashed == 0

        t_warm = median_time(attest_warm, args.repeat)
        print(f"\nunchanged   attest key inputs (load index, glob, lstat): "
              f"{t_warm * 1000:8.1f} ms")
        if git:
            genv = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b",
                    "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"}
            run([git, "init", "-q"], project, genv)
            run([git, "-c", "core.looseCompression=0", "add", "-A", "data"], project, genv)
            run([git, "commit", "-q", "-m", "bench"], project, genv)
            run([git, "status", "--porcelain"], project, genv)  # refresh the index once
            t_git = median_time(lambda: run([git, "status", "--porcelain"], project, genv),
                                args.repeat)
            print(f"unchanged   git status (same tree):                     "
                  f"{t_git * 1000:8.1f} ms")
            print(f"  ratio git/attest: {t_git / t_warm:.2f}x")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ATTEST_")}
        env["PYTHONPATH"] = str(REPO)
        (project / "attest.yaml").write_text(textwrap.dedent("""\
            name: bench
            steps:
              digest:
                run: echo hashed
                inputs: ["data/**"]
              bare:
                run: echo bare
            """))
        cli = [sys.executable, "-m", "attest_cli", "run", "-q"]
        run([*cli, "--step", "digest"], project, env)
        run([*cli, "--step", "digest"], project, env)
        run([*cli, "--step", "bare"], project, env)
        t_cached = median_time(lambda: run([*cli, "--step", "digest"], project, env),
                               args.repeat)
        t_bare = median_time(lambda: run([*cli, "--step", "bare"], project, env), args.repeat)
        print(f"unchanged   attest run, cached step over {len(rels)} inputs: "
              f"{t_cached * 1000:8.1f} ms")
        print(f"            attest run, cached step without inputs:     {t_bare * 1000:8.1f} ms")
        print(f"  time beyond start-up: {(t_cached - t_bare) * 1000:.1f} ms")

        # 3. restore -----------------------------------------------------------------------
        shutil.rmtree(project / ".git", ignore_errors=True)
        src = base / "restore-src"
        n_restore = max(1, args.restore_mib)  # 1 MiB files
        make_tree(src, args.restore_mib * 2**20, n_restore)
        local = LocalBackend(base / "cache")
        files, _ = describe(base, ["restore-src"], StatIndex(None))
        for f in files:
            if f.kind == "file":
                entries.put_blob(local, f.digest, (base / f.path).read_bytes())
        dest_root = base / "restored"

        def attest_restore() -> None:
            shutil.rmtree(dest_root, ignore_errors=True)
            dest_root.mkdir()
            restore_files(dest_root, files, lambda f: entries.fetch_blob(local, f.digest))

        def cp_r() -> None:
            shutil.rmtree(base / "copied", ignore_errors=True)
            run(["cp", "-r", str(src), str(base / "copied")], base)

        t_restore = median_time(attest_restore, args.repeat)
        t_cp = median_time(cp_r, args.repeat)
        print(f"\nrestore     attest ({args.restore_mib} MiB, {n_restore} files, verified): "
              f"{t_restore * 1000:8.1f} ms")
        print(f"restore     cp -r (same tree):                          {t_cp * 1000:8.1f} ms")
        print(f"  ratio cp/attest: {t_cp / t_restore:.2f}x")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
