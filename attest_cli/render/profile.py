"""What ``attest run --profile`` says about the profile it wrote (on stderr)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from attest_cli.profiling.session import ProfileOutcome


def outcome_note(outcome: ProfileOutcome, where: str) -> str:
    """Where the profile went (``where``, as the user types it) and what profiling cost."""
    if outcome.error:
        return (f"attest: warning: {outcome.kind} profile not written to {where}: "
                f"{outcome.error}\n")
    facts = outcome.facts
    if outcome.kind == "cpu":
        what = (f"{facts.get('samples', 0)} samples in {facts.get('threads', 1)} thread(s) "
                f"over {facts.get('duration_seconds', 0):.2f}s")
    else:
        what = (f"peak {facts.get('peak_memory_bytes', 0) / 2**20:.1f} MiB, "
                f"{facts.get('allocations', 0)} allocations")
    return (f"{outcome.kind} profile ({outcome.tool}): {where} ({what}; profiler "
            f"overhead {outcome.overhead_seconds * 1000:.0f}ms to start, stop and "
            f"write)\n  analyze it: attest analyze {where} --format html "
            f"--output {outcome.kind}-analysis.html\n{_steps_note(facts.get('steps'))}")


def _steps_note(steps: dict[str, Any] | None) -> str:
    """``--profile-steps``: how many step captures, where, and the largest one."""
    if steps is None:
        return ""
    captures = [c for c in steps.get("captures", []) if "peak_memory_bytes" in c]
    if not captures:
        return ("  step captures: none (no step started a Python interpreter that can "
                "import memray)\n")
    top = max(captures, key=lambda c: c["peak_memory_bytes"])
    return (f"  step captures: {len(captures)} in {steps['directory']} (largest: "
            f"{top['step']} pid {top['pid']}, peak {top['peak_memory_bytes'] / 2**20:.1f} MiB)"
            f"\n  analyze one: memray stats {top['file']}\n")
