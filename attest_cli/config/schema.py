"""Every configuration key attest knows, with its type, default and meaning.

This table is the single source of truth: validation, ``attest config list``, the README's
key reference and completion of key names are all derived from it. Keys are dotted paths
mirroring the nested YAML sections of the seed (``monitoring.prometheus.enabled``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, NamedTuple

from attest_cli.errors import ConfigError

_SIZE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_DURATION_UNITS = {"": 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0,
                   "w": 7 * 86400.0}
# Bounds on numbers from files, env and flags (docs/security.md): NaN and infinities are
# never a value, and a duration past a century or a size past 2**63 is a typo or an attack
# (99999999999d overflowed the date of a receipt's expiry after the steps had run).
MAX_DURATION_SECS = 100 * 365 * 86400.0
MAX_SIZE_BYTES = 2**63 - 1


def finite(value: float, what: str = "a number") -> float:
    """``value`` if it is a finite float, else ``ValueError`` (NaN compares false to every
    bound, so it must be refused by name)."""
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"expected {what}, not {value}")
    return value


def bounded_duration(seconds: float) -> float:
    """Seconds, refusing NaN, infinities, negatives and more than :data:`MAX_DURATION_SECS`."""
    finite(seconds, "a duration")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds > MAX_DURATION_SECS:
        raise ValueError(f"more than {MAX_DURATION_SECS:.0f} seconds (100 years)")
    return seconds


def parse_size(value: Any) -> int:
    """Parse ``10GB``/``512MiB``/``1000`` into bytes (decimal and binary units)."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 10GB")
    if isinstance(value, int):
        number = float(value)
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(value))
        if not m or m.group(2).lower() not in _SIZE_UNITS:
            raise ValueError("expected a size such as 10GB, 512MiB or a byte count")
        number = float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]
    if not 0 <= number <= MAX_SIZE_BYTES:
        raise ValueError(f"expected a size between 0 and {MAX_SIZE_BYTES} bytes")
    return int(value) if isinstance(value, int) else int(number)


def parse_duration(value: Any) -> float:
    """Parse ``90``, ``1.5s``, ``250ms``, ``24h``, ``7d`` into seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s or 24h")
    if isinstance(value, int | float):
        return bounded_duration(float(value))
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(value))
    if not m or m.group(2).lower() not in _DURATION_UNITS:
        raise ValueError("expected a duration such as 30s, 15m, 24h or 7d")
    return bounded_duration(float(m.group(1)) * _DURATION_UNITS[m.group(2).lower()])


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "yes", "on", "1"}:
        return True
    if text in {"false", "no", "off", "0"}:
        return False
    raise ValueError("expected true or false")


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer")
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError("expected an integer") from None


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError("expected a number") from None
    return finite(number)


def _str(value: Any) -> str:
    if isinstance(value, dict | list):
        raise ValueError("expected a string")
    return "" if value is None else str(value)


def _str_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return [str(v) for v in value]
    raise ValueError("expected a list of strings (or a comma-separated string)")


def _str_map(value: Any) -> dict[str, str]:
    if isinstance(value, str):
        out: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in value.split(","))):
            if "=" not in part:
                raise ValueError("expected key=value pairs separated by commas")
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip()
        return out
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    raise ValueError("expected a mapping (or key=value,key2=value2)")


class Key(NamedTuple):
    """One configuration key: how to parse it, its default and what it is for.

    (A NamedTuple: a frozen dataclass costs ~0.8 ms more to define, on every invocation.)
    """

    name: str
    kind: str  # bool, int, float, str, size, duration, list, map, enum
    default: Any
    doc: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    secret: bool = False
    parse: Callable[[Any], Any] = _str

    def coerce(self, value: Any) -> Any:
        """Parse a raw value (from YAML, env or the command line) or raise ``ValueError``."""
        if self.kind == "enum":
            text = str(value).strip().lower() if not isinstance(value, bool) else str(value)
            if text not in self.choices:
                raise ValueError(f"expected one of {', '.join(self.choices)}")
            return text
        parsed = self.parse(value)
        if self.minimum is not None and parsed < self.minimum:
            raise ValueError(f"must be >= {self.minimum:g}")
        if self.maximum is not None and parsed > self.maximum:
            raise ValueError(f"must be <= {self.maximum:g}")
        return parsed


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "bool": _bool, "int": _int, "float": _float, "str": _str, "size": parse_size,
    "duration": parse_duration, "list": _str_list, "map": _str_map, "enum": _str,
}


def _k(name: str, kind: str, default: Any, doc: str, **kw: Any) -> Key:
    return Key(name=name, kind=kind, default=default, doc=doc, parse=_PARSERS[kind], **kw)


LOG_LEVELS = ("trace", "debug", "info", "warn", "error")

KEYS: dict[str, Key] = {k.name: k for k in [
    _k("log_level", "enum", "info", "Lowest level logged (trace, debug, info, warn, error).",
       choices=LOG_LEVELS),
    _k("log_format", "enum", "auto", "auto: JSON when stderr is not a terminal (text under "
       "GitHub Actions), else text.",
       choices=("auto", "text", "json")),
    _k("parallel", "int", 0, "Commands run at once; 0 means the CPU count.", minimum=0,
       maximum=1024),
    _k("cache.enabled", "bool", True, "Use the step cache at all."),
    _k("cache.backend", "enum", "local", "Where entries live: local, redis, s3 or reapi "
       "(a REAPI v2 Action Cache: BuildGrid, Buildbarn, BuildBuddy, ...).",
       choices=("local", "redis", "s3", "reapi")),
    _k("cache.dir", "str", ".attest/cache", "Local cache directory (first tier of remotes)."),
    _k("cache.max_size", "size", "10GB", "Local cache size; least recently used entries go."),
    _k("cache.retention_days", "int", 30, "Entries unused this long are pruned (and Redis TTL).",
       minimum=0),
    _k("cache.compression", "enum", "none", "Compress stored blobs: none or zstd.",
       choices=("none", "zstd")),
    _k("cache.endpoint", "str", "", "Redis endpoint: host:port, redis:// or rediss:// URL; "
       "reapi: grpc://host:port or grpcs://host[:port]."),
    _k("cache.instance", "str", "", "REAPI instance name sent with every request (reapi)."),
    _k("cache.headers", "map", {}, "Extra gRPC metadata of every REAPI call, e.g. an auth "
       "token (key=value,...; reapi). Never logged.", secret=True),
    _k("cache.tls_ca", "str", "", "PEM file of the CA of a grpcs:// REAPI endpoint "
       "(default: the system roots)."),
    _k("cache.bucket", "str", "", "S3 bucket of the s3 backend."),
    _k("cache.region", "str", "", "S3 region (default: the AWS chain's)."),
    _k("cache.prefix", "str", "attest/", "Key prefix inside the bucket or Redis database."),
    _k("cache.endpoint_url", "str", "", "S3-compatible endpoint URL (MinIO, moto, ...)."),
    _k("cache.max_entry_size", "size", "2GB",
       "Largest cache object read or stored (a blob, a manifest); larger ones are misses."),
    _k("cache.timeout", "duration", 5.0,
       "Total deadline of each remote cache call (all its reads and chunks), in seconds.",
       minimum=0),
    _k("cache.mode", "enum", "read-write", "read-write, or read-only for untrusted builds.",
       choices=("read-write", "read-only")),
    _k("cache.required", "bool", False, "Fail the run when the remote backend is unreachable."),
    _k("monitoring.prometheus.enabled", "bool", False, "Serve /metrics live during attest run."),
    _k("monitoring.prometheus.endpoint", "str", ":9090",
       "host:port to listen on; :port is loopback, 0.0.0.0:port exposes it."),
    _k("monitoring.prometheus.path", "str", "/metrics", "HTTP path of the metrics."),
    _k("monitoring.prometheus.namespace", "str", "attest", "Prefix of every metric name."),
    _k("monitoring.prometheus.pushgateway", "str", "", "Pushgateway URL; push after every run."),
    _k("monitoring.prometheus.job", "str", "attest", "Pushgateway job label."),
    _k("monitoring.prometheus.instance", "str", "", "Runner identity for pushes (default: host)."),
    _k("monitoring.prometheus.push_timeout", "duration", 5.0,
       "Total deadline of the Pushgateway push.", minimum=0),
    _k("history.path", "str", ".attest/history.db", "SQLite run history."),
    _k("history.retention_days", "int", 90, "Runs older than this are deleted.", minimum=0),
    _k("history.keep_runs", "int", 100,
       "Run reports and step logs kept under .attest/runs and .attest/logs, and runs whose "
       "steps the history keeps (newest first); older ones are deleted at the end of each "
       "run. 0 keeps all.", minimum=0),
    _k("tracing.enabled", "bool", False, "Export OpenTelemetry traces of every run."),
    _k("tracing.service_name", "str", "attest", "service.name resource attribute."),
    _k("tracing.exporter.type", "enum", "otlp", "otlp, jaeger, zipkin, console or file.",
       choices=("otlp", "jaeger", "zipkin", "console", "file")),
    _k("tracing.exporter.endpoint", "str", "", "Collector URL (file: the output path)."),
    _k("tracing.exporter.protocol", "enum", "http/protobuf", "OTLP protocol.",
       choices=("http/protobuf", "grpc")),
    _k("tracing.exporter.headers", "map", {}, "Extra exporter headers (key=value,...).",
       secret=True),
    _k("tracing.exporter.timeout", "duration", 5.0, "Bound on export and shutdown flush.",
       minimum=0),
    _k("tracing.sampling.rate", "float", 1.0, "Fraction of traces kept (0..1).",
       minimum=0.0, maximum=1.0),
    _k("tracing.sampling.always_sample_errors", "bool", True,
       "Keep every trace with an error, whatever the rate."),
    _k("tracing.max_buffered_spans", "int", 10000,
       "Spans held per trace while the keep/drop decision waits.", minimum=1),
    _k("health.enabled", "bool", True, "Serve the health endpoints beside /metrics."),
    _k("health.endpoints.liveness", "str", "/health/live", "Liveness path."),
    _k("health.endpoints.readiness", "str", "/health/ready", "Readiness path."),
    _k("health.endpoints.metrics", "str", "/metrics", "Metrics path on the health server."),
    _k("health.timeout", "duration", 2.0, "Timeout of each readiness check.", minimum=0),
    _k("signing.key", "str", ".attest/keys/private.key", "Ed25519 private key used by --sign."),
    _k("signing.trusted_keys", "list", [], "Public keys whose receipts are trusted."),
    _k("signing.expires_in", "str", "", "Receipt lifetime, e.g. 30d (empty: never expires)."),
    _k("execution.backend", "enum", "local",
       "Where steps run: local, or reapi (a Remote Execution API v2 server; docs/remote.md).",
       choices=("local", "reapi")),
    _k("execution.endpoint", "str", "",
       "REAPI server of remote execution: grpc://host:port, or grpcs:// for TLS."),
    _k("execution.instance", "str", "", "REAPI instance name (empty: the default instance)."),
    _k("execution.headers", "map", {},
       "gRPC metadata sent with every call (key=value,...), e.g. an auth token.", secret=True),
    _k("execution.tls_ca", "str", "", "PEM CA bundle that signs a grpcs:// server's "
       "certificate (empty: the system roots)."),
    _k("execution.required", "bool", False,
       "Fail the run (exit 1) when the execution server is unreachable, instead of one "
       "warning and running the steps here."),
    _k("execution.timeout", "duration", 30.0,
       "Deadline of each call to the execution server other than waiting for a step "
       "(capabilities, uploads, downloads).", minimum=0.001),
    _k("execution.queue_timeout", "duration", 600.0,
       "How long beyond a step's own timeout attest waits for its remote result (queueing, "
       "input fetch, output upload).", minimum=0.001),
    _k("execution.max_wait", "duration", 3600.0,
       "How long attest waits for the remote result of a step that has no timeout.",
       minimum=0.001),
    _k("profiling.interval", "duration", 0.001, "pyinstrument sampling interval (seconds).",
       minimum=0.0001),
    _k("profiling.native", "bool", False, "memray: record native stack frames."),
]}

# Environment variables named in the SPEC that are shorter than the generic ATTEST_A__B form.
ENV_ALIASES: dict[str, str] = {
    "ATTEST_LOG_LEVEL": "log_level",
    "ATTEST_LOG_FORMAT": "log_format",
    "ATTEST_CACHE_DIR": "cache.dir",
    "ATTEST_SIGNING_KEY": "signing.key",
    "ATTEST_PARALLEL": "parallel",
}


def env_name(key: str) -> str:
    """The generic environment variable of a key: ``cache.dir`` -> ``ATTEST_CACHE__DIR``."""
    return "ATTEST_" + key.upper().replace(".", "__")


def lookup(key: str) -> Key:
    """Return the schema entry for ``key`` or raise with a did-you-mean hint."""
    try:
        return KEYS[key]
    except KeyError:
        raise ConfigError(f"unknown configuration key '{key}'{suggest(key, KEYS)}") from None


def suggest(word: str, candidates: Any) -> str:
    """A ``(did you mean 'x'?)`` suffix, or an empty string when nothing is close."""
    import difflib  # only for a mistake: not part of every run's start-up

    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def section_names() -> set[str]:
    """Top-level section names (``cache``, ``monitoring``...) that may appear in files."""
    return {k.split(".", 1)[0] for k in KEYS}
