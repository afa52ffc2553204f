"""The one identity of a pipeline definition: :func:`pipeline_hash`.

Receipts record it (and ``attest verify`` compares it with the current ``attest.yaml``),
benchmark results record it (``attest benchmark compare`` notes when two results measured
different definitions). Both must agree, so there is one function. Its bytes are the
sorted-key, compact, UTF-8 JSON of :meth:`Pipeline.canonical` — the form v1 receipts were
signed with (``attestation.canonical.canonical_bytes``), so every stored receipt keeps
verifying.
"""

from __future__ import annotations

import json

from attest_cli.digest import bytes_digest
from attest_cli.pipeline.model import Pipeline


def pipeline_hash(pipeline: Pipeline) -> str:
    """``blake3:<hex>`` of the canonical pipeline definition (not of the file's formatting):
    equal hashes mean the same steps, commands, needs, inputs, outputs, env and cache
    settings."""
    text = json.dumps(pipeline.canonical(), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False)
    return bytes_digest(text.encode("utf-8"))
