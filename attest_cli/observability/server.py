"""The HTTP server of ``/metrics`` and the health endpoints (live run and ``attest serve``).

The standard library's threading server: each scrape gets a thread, so a slow readiness
check never holds up a metrics scrape. It binds before the run starts, so a port in use is
one clear error line naming the port and the configuration key, not a late surprise.
"""

from __future__ import annotations

import errno
import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from attest_cli.config.layers import Settings
from attest_cli.errors import ConfigError

log = logging.getLogger("attest.metrics")

Response = tuple[int, str, bytes]
Route = Callable[[], Response]
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"


def parse_endpoint(value: str, where: str) -> tuple[str, int]:
    """``host:port`` or ``:port`` (every interface), ``[v6]:port`` too."""
    text = str(value).strip()
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{where}: {text!r} is not host:port or :port (e.g. \":9090\")")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port_text)


def json_response(code: int, body: dict[str, Any]) -> Response:
    return code, "application/json", (json.dumps(body) + "\n").encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # 50 scrapers connecting at once must not be refused


class EndpointServer:
    """Serves a fixed set of GET routes on one socket, in a background thread."""

    def __init__(self, host: str, port: int, routes: dict[str, Route], *, where: str) -> None:
        self.routes = routes
        self.where = where
        handler = self._handler_class()
        try:
            family_server = _Server
            if ":" in host:
                import socket

                class _Server6(_Server):
                    address_family = socket.AF_INET6
                family_server = _Server6
            self.httpd = family_server((host, port), handler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(f"port {port} is already in use ({where})") from None
            raise ConfigError(f"cannot listen on {host or '*'}:{port} ({where}): "
                              f"{exc.strerror or exc}") from None
        self.port = int(self.httpd.server_address[1])
        self.host = host
        self._thread: threading.Thread | None = None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        routes = self.routes

        class Handler(BaseHTTPRequestHandler):
            server_version = "attest"

            def do_GET(self) -> None:
                route = routes.get(urlsplit(self.path).path)
                if route is None:
                    code, ctype, body = 404, "text/plain", b"not found\n"
                else:
                    try:
                        code, ctype, body = route()
                    except Exception as exc:  # a broken route is a 500, never a dead server
                        log.warning("serving %s failed: %s", self.path, exc)
                        code, ctype, body = 500, "text/plain", f"error: {exc}\n".encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.log(5, "http: " + format, *args)

        return Handler

    def start(self) -> EndpointServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="attest-metrics",
                                        daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown() if self._thread is not None else None
        self.httpd.server_close()

    @property
    def url(self) -> str:
        host = self.host or "0.0.0.0"
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.port}"


def routes_for(settings: Settings, metrics: Route, readiness: Callable[[], Any] | None
               ) -> dict[str, Route]:
    """``monitoring.prometheus.path`` and ``health.endpoints.*`` mapped to their handlers."""
    routes: dict[str, Route] = {}
    for key in ("monitoring.prometheus.path", "health.endpoints.metrics"):
        path = str(settings[key]).strip()
        if not path.startswith("/"):
            raise ConfigError(f"{key}: {path!r} must start with /")
        routes[path] = metrics
    if settings["health.enabled"]:
        live = str(settings["health.endpoints.liveness"])
        ready = str(settings["health.endpoints.readiness"])
        for key, path in (("health.endpoints.liveness", live),
                          ("health.endpoints.readiness", ready)):
            if not path.startswith("/"):
                raise ConfigError(f"{key}: {path!r} must start with /")
        routes[live] = lambda: json_response(200, {"status": "healthy"})
        if readiness is not None:
            def ready_route() -> Response:
                report = readiness()
                return json_response(report.http_status, report.to_dict())
            routes[ready] = ready_route
    return routes
