"""Renderers for benchmark results (``"schema": "attest.benchmark"``).

The benchmark feature registers its formats here, e.g.
``register(BENCHMARK, "text", render_text)``; until it does, ``attest analyze`` says that
analyzing benchmark results is not available (exit 2).
"""

from __future__ import annotations
