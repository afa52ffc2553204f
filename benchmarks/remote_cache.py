"""A remote cache a few milliseconds away: storing to it and restoring from it, against make.

What a CI job with a shared cache sees: its runner is fresh (no local cache, no outputs) and
the cache is across the network. ``redis-server`` runs on a free loopback port behind a
proxy (in this process) that delays every chunk by ``--delay-ms`` in each direction (5 ms:
a round trip of ~10 ms, as between availability zones). N independent ``cp`` steps, one
input and one output each (the ``cold`` graph of ``scale.py``), at ``-j``:

- ``make``: the steps run (what a job without a cache does);
- ``attest, no cache``: the same with ``--no-cache``;
- ``attest, cold``: local cache and outputs removed, the remote emptied: every step runs and
  is stored in both tiers;
- ``attest, warm remote``: local cache and outputs removed, the remote full: every step is
  restored from it.

Whole processes in interleaved rounds, medians (``scale.py``'s harness). Run::

    .venv/bin/python benchmarks/remote_cache.py                 # 200 steps, -j2, 5 ms
    .venv/bin/python benchmarks/remote_cache.py --steps 1000 --delay-ms 20
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from _timing import free_port, wait_port
from scale import Variant, clean_env, interleaved, med, write_copy_project


def start_proxy(listen: int, target: int, delay: float) -> None:
    """A TCP proxy on a daemon thread: every chunk, either way, waits ``delay`` seconds."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await asyncio.sleep(delay)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", listen)
        async with server:
            await server.serve_forever()

    threading.Thread(target=lambda: asyncio.run(serve()), daemon=True).start()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--delay-ms", type=float, default=5.0, help="each way, per chunk")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--attest", help="the attest to run (default: beside this interpreter)")
    args = ap.parse_args()
    redis_bin, make = shutil.which("redis-server"), shutil.which("make")
    if redis_bin is None or make is None:
        print("needs redis-server and make on PATH", file=sys.stderr)
        return 2
    attest = args.attest or str(Path(sys.executable).with_name("attest"))
    redis_port, proxy_port = free_port(), free_port()
    redis = subprocess.Popen([redis_bin, "--port", str(redis_port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(redis_port)
        start_proxy(proxy_port, redis_port, args.delay_ms / 1000)
        wait_port(proxy_port)
        with tempfile.TemporaryDirectory(prefix="attest-remote-") as tmp:
            return measure(Path(tmp), args, attest, make, redis_port, proxy_port)
    finally:
        redis.kill()
        redis.wait()


def measure(root: Path, args: argparse.Namespace, attest: str, make: str, redis_port: int,
            proxy_port: int) -> int:
    env = clean_env(root)
    for tool in ("attest", "make"):
        write_copy_project(root / tool, args.steps, tool)
    proj = root / "attest"
    text = (proj / "attest.yaml").read_text()
    (proj / "attest.yaml").write_text(text.replace(
        "steps:\n", f"cache: {{backend: redis, endpoint: '127.0.0.1:{proxy_port}'}}\nsteps:\n",
        1))

    def fresh(d: Path, *, flush: bool = False) -> None:
        shutil.rmtree(d / "out", ignore_errors=True)
        shutil.rmtree(d / ".attest" / "cache", ignore_errors=True)
        (d / "out").mkdir()
        if flush:
            import redis

            redis.Redis(port=redis_port).flushall()

    jobs = str(args.jobs)
    run = [attest, "-q", "run", "-j", jobs]
    variants = {
        "make": Variant([make, "-s", f"-j{jobs}"], root / "make", env,
                        lambda: fresh(root / "make")),
        "attest, no cache": Variant([*run, "--no-cache"], proj, env, lambda: fresh(proj)),
        "attest, cold": Variant(run, proj, env, lambda: fresh(proj, flush=True)),
        "attest, warm remote": Variant(run, proj, env, lambda: fresh(proj)),
    }
    order = list(variants)
    # the remote is full whenever the warm variant runs: the warm-up round runs cold first,
    # and every later round follows one with a cold run (rounds alternate ABCD, DCBA)
    samples = interleaved(variants, args.repeat, 1)
    tm = med(samples["make"])
    print(f"remote cache {args.delay_ms:g} ms away (each way), {args.steps} cp steps, "
          f"-j{args.jobs}; medians of {args.repeat} interleaved rounds")
    for name in order:
        t = med(samples[name])
        print(f"  {name:22s} {t * 1000:8.1f} ms  {t / tm:5.2f}x make")
    return 0


if __name__ == "__main__":
    sys.exit(main())
