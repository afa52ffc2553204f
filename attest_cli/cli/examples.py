"""One worked example per command: the epilog of its ``--help`` and the man page's EXAMPLES.

Kept in one table (rather than in each command's decorator) so that ``--help`` and the man
page cannot disagree, and so that a test can check that no command lacks one.
"""

from __future__ import annotations

from typing import Any

# command path -> [(command line, what it does)]
EXAMPLES: dict[str, list[tuple[str, str]]] = {
    "": [("attest run", "run attest.yaml of the current directory"),
         ("attest -C examples run -v", "run another project's pipeline, streaming step output")],
    "run": [("attest run build test", "run build and test, and the steps they need"),
            ("attest run --dry-run -f json", "the plan, each step predicted cached or run"),
            ("attest run --sign -o receipt.json", "run and write a signed receipt")],
    "init": [("attest init", "write a sample attest.yaml and .attest/config.yaml")],
    "verify": [("attest verify .attest/receipts/*.json -f json",
                "verify receipts against the files on disk")],
    "history": [("attest history -n 5 --failures-only", "the last five failed runs")],
    "serve": [("attest serve --endpoint 127.0.0.1:9464", "serve /metrics and /health/*")],
    "health": [("attest health -f json", "run the health checks once")],
    "analyze": [("attest analyze cpu.pyisession -o cpu.html", "render a CPU profile as HTML")],
    "pipeline validate": [("attest pipeline validate -p ci.yaml", "check another pipeline file")],
    "pipeline show": [("attest pipeline show -f mermaid", "the DAG with its critical path")],
    "config get": [("attest config get cache.backend", "the effective value of one key")],
    "config set": [("attest config set cache.backend redis", "set a key in the project layer")],
    "config unset": [("attest config unset --global log_level", "drop a key from user config")],
    "config list": [("attest config list -f json", "every key with its default and meaning")],
    "config show": [("attest config show --origin", "the merged settings and their layers")],
    "config path": [("attest config path", "where each configuration layer lives")],
    "config validate": [("attest config validate", "check every layer; exit 2 on a bad key")],
    "cache stats": [("attest cache stats -f json", "entries, size and hit rate")],
    "cache verify": [("attest cache verify --repair", "re-hash entries, dropping corrupt ones")],
    "cache clear": [("attest cache clear --all", "empty the local and remote caches")],
    "cache prune": [("attest cache prune", "drop entries past retention and over max_size")],
    "cache explain": [("attest cache explain build", "why build ran or was cached")],
    "keys generate": [("attest keys generate", "create an Ed25519 key pair")],
    "keys list": [("attest keys list --trusted", "the public keys trusted for verify")],
    "keys trust": [("attest keys trust ed25519:3b6a27bc...", "trust another signer's key")],
    "keys export": [("attest keys export -f hex", "print the public key as ed25519:<hex>")],
    "receipt export": [("attest receipt export receipt.json -o receipt.intoto.json",
                        "an in-toto Statement in a DSSE envelope")],
    "monitoring dashboard": [("attest monitoring dashboard -o attest.json",
                              "the Grafana dashboard")],
    "monitoring alerts": [("attest monitoring alerts -o attest-rules.yml",
                           "the Prometheus alert rules")],
    "benchmark pipeline": [("attest benchmark pipeline -n 10 -l before",
                            "time ten cold runs, stored as 'before'")],
    "benchmark compare": [("attest benchmark compare -b before -f markdown",
                           "compare with 'before'; significant changes only")],
    "benchmark list": [("attest benchmark list", "the stored benchmark results")],
    "completion": [("attest completion bash > ~/.local/share/bash-completion/completions/attest",
                    "install bash completion")],
}


def for_group(path: str) -> list[tuple[str, str]]:
    """A group's examples: the first example of each of its subcommands."""
    prefix = f"{path} " if path else ""
    return [examples[0] for sub, examples in EXAMPLES.items()
            if sub.startswith(prefix) and " " not in sub[len(prefix):] and sub != path]


def epilog(path: str, group: bool = False) -> str | None:
    """The ``Examples:`` block of a command's help (``\\b`` keeps click from rewrapping)."""
    examples = EXAMPLES.get(path) or (for_group(path) if group else None)
    if not examples:
        return None
    lines = ["\b", "Examples:"]
    for command, what in examples:
        lines += [f"  {command}", f"      {what}"]
    return "\n".join(lines)


def add_epilogs(command: Any, path: tuple[str, ...] = ()) -> Any:
    """Set every command's epilog from :data:`EXAMPLES`, walking a click command tree."""
    text = epilog(" ".join(path), group=bool(getattr(command, "commands", None)))
    if text is not None:
        command.epilog = text
    for name, sub in (getattr(command, "commands", None) or {}).items():
        add_epilogs(sub, (*path, name))
    return command
