"""``attest verify`` buffers its verifications and writes them in one transaction at the end:
every one is counted, including when the command is interrupted part way through."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from attest_cli.attestation import standalone
from attest_cli.attestation.standalone import VerifyRequest, verify_receipts
from attest_cli.attestation.verify import ReceiptVerifier, VerificationResult
from attest_cli.context import AppContext
from attest_cli.errors import Interrupted
from attest_cli.metrics.history import HistoryDB
from tests.attestation.signing import PIPELINE, fresh_copy, scrape, signed_template
from tests.support import attest

RECEIPTS = 20


@pytest.fixture
def many(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    """A signed project with RECEIPTS copies of its receipt under ``many/``."""
    project = fresh_copy(signed_template(tmp_path_factory, PIPELINE, "--output", "r.json"),
                         tmp_path)
    (project / "many").mkdir()
    for n in range(RECEIPTS):
        shutil.copy(project / "r.json", project / "many" / f"r{n:02d}.json")
    return project


def counted(project: Path) -> dict[str, float]:
    """attest_verifications_total by type, read through the history's own API."""
    snap = HistoryDB(project / ".attest" / "history.db").snapshot()
    return {labels[0]: v for (name, _, labels), v in snap.counters.items()
            if name == "verifications_total"}


def test_every_verification_of_one_invocation_is_counted(many: Path) -> None:
    before = scrape(many)
    proc = attest("verify", "many/*.json", cwd=many)
    assert proc.returncode == 0, proc.stderr
    after = scrape(many)
    for kind in ("signature", "receipt"):
        key = f'attest_verifications_total{{type="{kind}"}}'
        assert after[key] - before.get(key, 0.0) == RECEIPTS
        key = f'attest_verification_duration_seconds_count{{type="{kind}"}}'
        assert after[key] - before.get(key, 0.0) == RECEIPTS
    assert counted(many) == {"signature": RECEIPTS, "receipt": RECEIPTS}
    rows = HistoryDB(many / ".attest" / "history.db")
    with rows.connect() as conn:
        assert conn.execute("SELECT count(*) FROM verifications").fetchone()[0] == 2 * RECEIPTS


def _stop_after(monkeypatch: pytest.MonkeyPatch, calls: int, stop: Callable[[], None]) -> None:
    """Make the verifier call ``stop`` once ``calls`` receipts are verified."""
    real = ReceiptVerifier.verify
    done = [0]

    def verify(self: ReceiptVerifier, loaded: object) -> VerificationResult:
        if done[0] == calls:
            stop()
        done[0] += 1
        return real(self, loaded)  # type: ignore[arg-type]

    monkeypatch.setattr(standalone.ReceiptVerifier, "verify", verify)


def _request() -> VerifyRequest:
    return VerifyRequest(receipts=["many/*.json"])


def _ctx(project: Path) -> AppContext:
    return AppContext(workdir=project, environ={"XDG_CONFIG_HOME": str(project / ".xdg")})


def test_sigterm_mid_verification_keeps_what_was_verified(
        many: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    previous = signal.getsignal(signal.SIGTERM)
    # the signal arrives while the 8th receipt is being verified: that one completes,
    # the 9th is never started, and the 8 are written before the command stops
    _stop_after(monkeypatch, 7, lambda: os.kill(os.getpid(), signal.SIGTERM))
    with pytest.raises(Interrupted) as stopped:
        verify_receipts(_ctx(many), _request())
    assert stopped.value.exit_code == 143
    assert counted(many) == {"signature": 8, "receipt": 8}
    assert signal.getsignal(signal.SIGTERM) is previous  # the handler is restored


def test_ctrl_c_mid_verification_keeps_what_was_verified(
        many: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt() -> None:
        raise KeyboardInterrupt

    _stop_after(monkeypatch, 5, interrupt)
    with pytest.raises(KeyboardInterrupt):
        verify_receipts(_ctx(many), _request())
    assert counted(many) == {"signature": 5, "receipt": 5}


def test_sigterm_to_the_cli_records_the_verifications_it_made(many: Path) -> None:
    """End to end: a terminated ``attest verify`` has recorded exactly the receipts it
    reported verifying (``-v`` logs each one as it is done)."""
    total = 300
    for n in range(RECEIPTS, total):
        shutil.copy(many / "r.json", many / "many" / f"r{n:03d}.json")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATTEST_", "OTEL_"))}
    env["XDG_CONFIG_HOME"] = str(many / ".xdg")
    proc = subprocess.Popen([sys.executable, "-m", "attest_cli", "-v", "verify",
                             "many/*.json"], cwd=many, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "verified" in line:
            proc.send_signal(signal.SIGTERM)  # once, at the first verified receipt
            break
    lines.extend(proc.stderr)
    code = proc.wait(60)
    done = sum(1 for x in lines if "receipt " in x and ("verified" in x or "failed" in x))
    assert done >= 1
    # 143: stopped between receipts; 0 / -15: it had finished verifying when the signal came
    assert code in (143, 0, -signal.SIGTERM), "".join(lines)
    assert counted(many) == {"signature": done, "receipt": done}
    if code == 143:
        assert done < total and "interrupted by signal 15" in lines[-1]
