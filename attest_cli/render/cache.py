"""How ``attest cache`` shows its results: statistics per backend, a key's explanation.

Keys, paths and errors come from the cache (possibly a shared remote one): every one is
escaped (:func:`escape_control`) so it prints as one line.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from attest_cli.escaping import escape_control as esc

if TYPE_CHECKING:
    from attest_cli.cache.service import VerifyOutcome

CacheStats = list[dict[str, Any]]  # one row per backend (cache.service.stats)
Explanation = dict[str, Any]  # cache.service.explain


def size(n: int) -> str:
    """Bytes in decimal units, as ``du -h --si`` shows them (``1.5 MB``)."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


def stats_json(rows: CacheStats) -> str:
    return json.dumps({"backends": rows}, indent=2, default=str) + "\n"


def stats_table(rows: CacheStats) -> str:
    out = [f"{'backend':<8} {'entries':>8} {'size':>10} {'hits':>6} {'misses':>7} "
           f"{'hit rate':>9}\n"]
    for r in rows:
        rate = "-" if r["hit_rate"] is None else f"{r['hit_rate'] * 100:.1f}%"
        out.append(f"{r['backend']:<8} {r['entries']:>8} {size(r['bytes']):>10} {r['hits']:>6} "
                   f"{r['misses']:>7} {rate:>9}\n")
        if r["error"]:
            out.append(f"  ({r['backend']} unavailable: {esc(r['error'])})\n")
    return "".join(out)


def _short(value: str) -> str:
    """``-:blake3:89d96d68e13d...`` -> ``-:blake3:89d96d68e13d``: enough to tell them apart."""
    head, sep, digest = value.rpartition(":")
    return f"{head}{sep}{digest[:12]}" if len(digest) > 12 else value


def explain_json(data: Explanation) -> str:
    return json.dumps(data, indent=2, default=str) + "\n"


def explain_table(data: Explanation) -> str:
    out = [f"step {data['step']}: key {data['key']}\n"]
    if not data["cacheable"]:
        out.append("  cache: false - this step is never looked up\n")
    for name, value in sorted(data["components"].items()):
        out.append(f"  {esc(name):<40} {esc(value)}\n")
    where = ", ".join(f"{b}: {'present' if v is True else 'absent' if v is False else v}"
                      for b, v in data["in_cache"].items())
    out.append(f"in cache: {where}\n")
    if data.get("reapi_action"):
        out.append(f"reapi action: {data['reapi_action']}\n")
    last = data["last_entry"]
    if last is None:
        out.append("last stored entry: none recorded for this step\n")
    else:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last["at"] or 0))
        out.append(f"last stored entry: {str(last['key'])[:16]} ({when})\n")
        if data["changes"]:
            out.append("differs from it in:\n")
            for d in data["changes"]:
                detail = "" if d["before"] is None or d["now"] is None else \
                    f" ({_short(d['before'])} -> {_short(d['now'])})"
                out.append(f"  - {esc(d['change'])}{esc(detail)}\n")
        else:
            out.append("no component differs from it\n")
    out.append("next run: " + ("hit (restored, not executed)" if data["would_hit"]
                               else "miss (the step will run)") + "\n")
    return "".join(out)


def verify_text(outcome: VerifyOutcome, *, repair: bool) -> str:
    """``attest cache verify``: one line per broken entry, then the count."""
    out = []
    for p in outcome.problems:
        action = "removed" if p.repaired else "corrupt"
        detail = esc("; ".join(p.problems))
        out.append(f"{action}: {p.backend} entry {esc(p.key[:16])}: {detail}\n")
    left = [p for p in outcome.problems if not p.repaired]
    out.append(f"{outcome.checked} entr{'y' if outcome.checked == 1 else 'ies'} checked, "
               f"{len(outcome.problems)} with problems"
               + (" (repaired)" if repair and outcome.problems and not left else "") + "\n")
    return "".join(out)
