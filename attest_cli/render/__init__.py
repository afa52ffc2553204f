"""The rendering layer: results are data, renderers turn them into text.

Every result a command prints (a run report, a verification, the history, a benchmark
result or comparison, a CPU profile, a memory capture, a health report, cache statistics,
a dry-run plan) has one registry of renderers keyed by format name
(:mod:`attest_cli.render.registry`); the command looks the format up and writes what it
returns to ``ctx.stdout``. Core code never prints; renderers never do I/O of their own.
"""
