"""Signing and verifying receipts: 1,000 receipts of 50 steps each, per-receipt times.

Compares attest's signer and verifier with (1) the floor: a bare Ed25519 sign/verify of
the same canonical bytes through ``cryptography``, and (2) what a shell user would
otherwise run: ``openssl pkeyutl -sign/-verify -rawin`` once per receipt. The anchor the
user quoted is ~1 ms to sign and ~0.5 ms to verify a receipt.

``attest verify`` records every verification in the run history (``.attest/history.db``);
the CLI figure includes that, and a separate line compares the recorder's one buffered
transaction with one transaction per verification event (what it did before).

Run: ``.venv/bin/python benchmarks/verify.py [RECEIPTS] [STEPS] [OPENSSL_SAMPLE]``.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from attest_cli.attestation import keys, receipt  # noqa: E402
from attest_cli.attestation.verify import ReceiptVerifier, VerifyOptions  # noqa: E402
from attest_cli.digest import file_digest  # noqa: E402


def make_workspace(root: Path, steps: int) -> list[tuple[list[dict], list[dict]]]:
    """Two real input and two real output files per step (verification hashes them)."""
    rng = random.Random(7)
    out = []
    for i in range(steps):
        pair: list[list[dict]] = [[], []]
        for kind, entries in (("src", pair[0]), ("dist", pair[1])):
            for j in range(2):
                rel = f"{kind}/step{i:02d}/file{j}.txt"
                path = root / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(rng.randbytes(4096))
                entries.append({"path": rel, "hash": file_digest(path)})
        out.append((pair[0], pair[1]))
    return out


def make_receipt(n: int, files: list[tuple[list[dict], list[dict]]]) -> dict:
    steps = [{"name": f"step-{i:02d}", "command": f"make target-{i} --jobs 4",
              "status": "success", "exit_code": 0, "duration_secs": 1.25 + i / 1000,
              "inputs": ins, "outputs": outs} for i, (ins, outs) in enumerate(files)]
    return {"schema": receipt.SCHEMA, "pipeline": "bench",
            "pipeline_hash": "blake3:" + "ab" * 32, "run_id": f"run-{n:05d}",
            "status": "success", "timestamp": receipt.utc_text(time.time()),
            "total_duration_secs": 75.5, "attest_version": "0.1.0",
            "environment": {"os": "Linux", "python": "3.11", "hostname": "ci-1"},
            "steps": steps}


def per_ms(seconds: float, count: int) -> float:
    return seconds / count * 1000


def openssl_times(work: Path, messages: list[bytes]) -> tuple[float, float] | None:
    if shutil.which("openssl") is None:
        return None
    work.mkdir(parents=True, exist_ok=True)
    key = work / "ossl.pem"
    pub = work / "ossl.pub"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key)],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pub)],
                   check=True, capture_output=True)
    for i, m in enumerate(messages):
        (work / f"m{i}").write_bytes(m)
    t0 = time.perf_counter()
    for i in range(len(messages)):
        subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", str(key), "-rawin", "-in",
                        str(work / f"m{i}"), "-out", str(work / f"s{i}")], check=True,
                       capture_output=True)
    sign = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(len(messages)):
        subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(pub),
                        "-rawin", "-in", str(work / f"m{i}"), "-sigfile", str(work / f"s{i}")],
                       check=True, capture_output=True)
    verify = time.perf_counter() - t0
    return per_ms(sign, len(messages)), per_ms(verify, len(messages))


def history_times(work: Path, events: int) -> tuple[float, float]:
    """Seconds to record ``events`` verifications: one transaction each, then buffered."""
    from attest_cli.context import AppContext
    from attest_cli.engine.events import EventBus, VerificationFinished
    from attest_cli.metrics.history import HistoryDB, Verification, attach_standalone
    from attest_cli.metrics.tally import Tally, account

    ctx = AppContext(workdir=work / "history-bench", environ={})
    settings = ctx.settings()
    made = [VerificationFinished(kind=("signature", "receipt")[i % 2], ok=True, reason=None,
                                 duration=0.001) for i in range(events)]
    db = HistoryDB(ctx.path(str(settings["history.path"])))
    db.ensure()
    t0 = time.perf_counter()
    for event in made:  # the old standalone recorder: one commit per event
        single = Tally()
        account(single, event, "")
        row = Verification(event.kind, event.ok, event.reason, event.duration, event.at)
        db.record_verifications(None, "", [row], single)
    per_event = time.perf_counter() - t0
    bus = EventBus()
    t0 = time.perf_counter()
    recorder = attach_standalone(bus, ctx, settings)
    for event in made:
        bus.publish(event)
    recorder.close()
    buffered = time.perf_counter() - t0
    total = db.snapshot().counters[("verifications_total", "", ("signature",))]
    assert total == events, (total, events)  # both ways counted every event
    return per_event, buffered


def recorded(work: Path) -> float:
    """Verifications the CLI run left in the history (``attest_verifications_total``)."""
    from attest_cli.metrics.history import HistoryDB

    snap = HistoryDB(work / ".attest" / "history.db").snapshot()
    return sum(v for (name, _, _), v in snap.counters.items() if name == "verifications_total")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    sample = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    with tempfile.TemporaryDirectory(prefix="attest-bench-verify-") as tmp:
        work = Path(tmp)
        made = keys.generate(work / "keys")
        key = keys.load_private_key(made.private)
        files = make_workspace(work, steps)
        docs = [make_receipt(n, files) for n in range(count)]

        # -- signing ---------------------------------------------------------------------
        t0 = time.perf_counter()
        signed = [receipt.sign(d, key) for d in docs]
        attest_sign = per_ms(time.perf_counter() - t0, count)
        messages = [receipt.signed_bytes(s) for s in signed]
        t0 = time.perf_counter()
        for m in messages:
            key.sign(m)
        floor_sign = per_ms(time.perf_counter() - t0, count)

        for n, doc in enumerate(signed):
            receipt.write(doc, work / "json" / f"r{n:05d}.json")
            receipt.write(doc, work / "yaml" / f"r{n:05d}.yaml")
        size = (work / "json" / "r00000.json").stat().st_size

        # -- verification ----------------------------------------------------------------
        public = Ed25519PublicKey.from_public_bytes(made.public_key)
        sigs = [bytes.fromhex(s["signature"].split(":", 1)[1]) for s in signed]
        t0 = time.perf_counter()
        for m, sig in zip(messages, sigs, strict=True):
            public.verify(sig, m)
        floor_verify = per_ms(time.perf_counter() - t0, count)

        trusted = [keys.KnownKey(made.public_key, "own", str(made.public))]
        timings = {}
        for fmt in ("json", "yaml"):
            verifier = ReceiptVerifier(VerifyOptions(root=work, trusted=trusted))
            paths = sorted((work / fmt).iterdir())
            t0 = time.perf_counter()
            results = [verifier.verify(receipt.load(p)) for p in paths]
            timings[fmt] = per_ms(time.perf_counter() - t0, count)
            assert all(r.ok for r in results), [r.to_dict() for r in results if not r.ok][:1]

        env = {**os.environ, "XDG_CONFIG_HOME": str(work / ".xdg")}
        t0 = time.perf_counter()
        cli = subprocess.run([sys.executable, "-m", "attest_cli", "verify", "--no-pipeline",
                              "--public-key", str(made.public), "--format", "json",
                              str(work / "json" / "*.json")], cwd=work, env=env,
                             capture_output=True, text=True)
        cli_ms = per_ms(time.perf_counter() - t0, count)
        assert cli.returncode == 0, cli.stderr
        assert recorded(work) == 2 * count, recorded(work)  # signature + receipt each
        per_event, buffered = history_times(work, 2 * count)

        ossl = openssl_times(work / "ossl", messages[:sample]) if sample else None

    print(f"{count} receipts x {steps} steps ({4 * steps} file hashes each, {size} bytes as "
          "JSON)")
    print(f"{'':44}{'ms/receipt':>12}")
    print(f"{'sign: attest (canonicalize + Ed25519)':44}{attest_sign:12.3f}")
    print(f"{'sign: bare Ed25519 of the same bytes':44}{floor_sign:12.3f}   "
          f"attest/bare {attest_sign / floor_sign:.1f}x")
    print(f"{'verify: bare Ed25519 signature check':44}{floor_verify:12.3f}")
    print(f"{'verify: attest, JSON file, all checks':44}{timings['json']:12.3f}   "
          f"attest/bare {timings['json'] / floor_verify:.1f}x")
    print(f"{'verify: attest, YAML file, all checks':44}{timings['yaml']:12.3f}")
    print(f"{'verify: `attest verify` CLI, one process':44}{cli_ms:12.3f}   "
          "(includes start-up)")
    print(f"{'history: 1 transaction per verification':44}{per_ms(per_event, count):12.3f}   "
          "(2 events per receipt; the recorder before)")
    print(f"{'history: buffered, 1 transaction at the end':44}{per_ms(buffered, count):12.3f}   "
          f"per-event/buffered {per_event / buffered:.0f}x")
    if ossl is not None:
        print(f"{'sign: openssl pkeyutl, one process each':44}{ossl[0]:12.3f}   "
              f"openssl/attest {ossl[0] / attest_sign:.0f}x  (sample of {sample})")
        print(f"{'verify: openssl pkeyutl, one process each':44}{ossl[1]:12.3f}   "
              f"openssl/attest-cli {ossl[1] / cli_ms:.0f}x  (sample of {sample})")
    print("anchor: ~1 ms to sign, ~0.5 ms to verify")


if __name__ == "__main__":
    main()
