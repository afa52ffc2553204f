"""The HTTP server of ``/metrics`` and the health endpoints (live run and ``attest serve``).

One event-loop thread holds every connection (an idle or half-open one costs a socket, not
a thread) and reads each request head under a total deadline; a complete request is
answered by a small fixed pool of worker threads, so a slow readiness check never holds up
a metrics scrape, and the liveness route is answered on the loop itself, so it answers
whatever the pool is doing. Connections are capped: at the cap the oldest idle connection
is closed to make room, and when every connection is busy a new one gets ``503`` at once.
It binds before the run starts (for ``attest run`` the event loop itself starts only when
the first client connects: :meth:`EndpointServer.start`): for ``attest serve`` a port in
use is one clear error line naming the port and the configuration key; ``attest run`` warns
once and runs without its live endpoint (:class:`PortInUse`). An endpoint without a host
binds loopback.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from attest_cli.config.layers import Settings
from attest_cli.errors import ConfigError
from attest_cli.record import FrozenRecord

if TYPE_CHECKING:  # asyncio is imported on the server's own thread (~20 ms off the run's path)
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger("attest.metrics")

Response = tuple[int, str, bytes]
Route = Callable[[], Response]
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"
LOOPBACK = "127.0.0.1"
TRACE = 5  # the level of per-connection chatter (a refused or timed-out client)


class Limits(FrozenRecord):
    """Every bound of the server (figures documented in docs/metrics.md)."""

    max_connections: int  # open at once; at the cap the oldest idle one is closed
    workers: int  # threads answering complete requests
    idle_timeout: float  # seconds to receive a whole request head (and keep-alive idle)
    write_timeout: float  # seconds to send a response to a client that does not read
    max_head_bytes: int  # request line + headers
    backlog: int  # 50 scrapers connecting at once must not be refused

    def __init__(self, max_connections: int = 256, workers: int = 4,
                 idle_timeout: float = 10.0, write_timeout: float = 10.0,
                 max_head_bytes: int = 16_384, backlog: int = 128) -> None:
        self.__dict__.update(max_connections=max_connections, workers=workers,
                             idle_timeout=idle_timeout, write_timeout=write_timeout,
                             max_head_bytes=max_head_bytes, backlog=backlog)


def parse_endpoint(value: str, where: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port``, or ``:port`` (loopback: expose with ``0.0.0.0:port``)."""
    text = str(value).strip()
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{where}: {text!r} is not host:port or :port (e.g. \":9090\")")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or LOOPBACK, int(port_text)


def json_response(code: int, body: dict[str, Any]) -> Response:
    return code, "application/json", (json.dumps(body) + "\n").encode()


class PortInUse(ConfigError):
    """Another process listens on the port (``attest run`` warns and goes on without it)."""


def _bind(host: str, port: int, backlog: int, where: str) -> socket.socket:
    try:
        if ":" in host:
            dual = host == "::" and socket.has_dualstack_ipv6()
            return socket.create_server((host, port), family=socket.AF_INET6,
                                        backlog=backlog, dualstack_ipv6=dual)
        return socket.create_server((host, port), backlog=backlog)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(f"port {port} is already in use ({where})") from None
        raise ConfigError(f"cannot listen on {host}:{port} ({where}): "
                          f"{exc.strerror or exc}") from None


def _response(code: int, ctype: str, body: bytes, *, keep_alive: bool,
              head_only: bool = False) -> bytes:
    from http import HTTPStatus  # on the server's thread: not on a run's start-up path

    try:
        phrase = HTTPStatus(code).phrase
    except ValueError:
        phrase = ""
    head = (f"HTTP/1.1 {code} {phrase}\r\nServer: attest\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n")
    return head.encode("latin-1") + (b"" if head_only else body)


class _BadRequest(Exception):
    pass


def _parse_head(head: bytes) -> tuple[str, str, bool, str]:
    """``(method, path, keep_alive, accept)`` of a request head, or :class:`_BadRequest`."""
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
    except ValueError:
        raise _BadRequest() from None
    if not version.startswith("HTTP/1."):
        raise _BadRequest()
    connection = ""
    accept: list[str] = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "connection":
            connection = value.strip().lower()
        elif name == "accept":  # repeated Accept headers are one comma-separated list
            accept.append(value.strip())
    keep = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    return method, urlsplit(target).path, keep, ",".join(accept)


class EndpointServer:
    """Serves a fixed set of GET routes on one socket, in a background thread."""

    def __init__(self, host: str, port: int, routes: dict[str, Route], *, where: str,
                 limits: Limits | None = None, inline: Iterable[str] = ()) -> None:
        self.routes = routes
        self.where = where
        self.limits = limits or Limits()
        # cheap routes answered on the loop itself (liveness): never behind the pool
        self.inline = frozenset(inline) | {p for p, r in routes.items()
                                           if getattr(r, "inline", False)}
        self.host = host or LOOPBACK
        self._sock = _bind(self.host, port, self.limits.backlog, where)
        self.port = int(self._sock.getsockname()[1])
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._stopping = False
        self._lazy = False
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._pool: ThreadPoolExecutor | None = None  # made on the server's thread
        self._conns: set[asyncio.Task[None]] = set()
        self._idle: OrderedDict[asyncio.Task[None], asyncio.StreamWriter] = OrderedDict()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, *, wait: bool = True) -> EndpointServer:
        """Serve on a background thread.

        ``wait=False`` (``attest run``) returns at once and defers the event loop until the
        first client connects: the socket already listens, so that client waits in the
        backlog for the few milliseconds asyncio takes to load, and a run that nobody
        scrapes never loads it at all.
        """
        self._lazy = not wait
        if self._lazy:
            self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self.serve_forever, name="attest-metrics",
                                        daemon=True)
        self._thread.start()
        if wait:
            self._started.wait(10)
        return self

    def serve_forever(self) -> None:
        if self._lazy:
            import select

            assert self._wake_r is not None
            select.select([self._sock, self._wake_r], [], [])  # a client, or stop()
            if self._stopping:
                return
        import asyncio

        asyncio.run(self._main())

    def stop(self) -> None:
        self._stopping = True  # a loop that has not started yet ends as soon as it does
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"x")
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended meanwhile
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(5)
        self._sock.close()
        for end in (self._wake_r, self._wake_w):
            if end is not None:
                end.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    async def _main(self) -> None:
        import asyncio
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=self.limits.workers,
                                        thread_name_prefix="attest-http")
        self._stop = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        if self._stopping:  # stop() came before the loop existed
            return
        server = await asyncio.start_server(self._client, sock=self._sock,
                                            limit=self.limits.max_head_bytes)
        self._started.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            for task in list(self._conns):
                task.cancel()
            await asyncio.gather(*self._conns, return_exceptions=True)

    @property
    def url(self) -> str:
        host = self.host
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.port}"

    # -- one connection --------------------------------------------------------------------
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import asyncio

        task = asyncio.current_task()
        assert task is not None
        try:
            if len(self._conns) >= self.limits.max_connections and not self._evict_idle():
                writer.write(_response(503, "text/plain", b"too many connections\n",
                                       keep_alive=False))
                await asyncio.wait_for(writer.drain(), self.limits.write_timeout)
                return
            self._conns.add(task)
            while await self._one_request(task, reader, writer):
                pass
        except asyncio.CancelledError:
            pass  # evicted at the cap, or the server stops
        except Exception as exc:  # a client's misbehaviour is never a traceback
            log.log(TRACE, "http: connection dropped: %s", exc)
        finally:
            self._conns.discard(task)
            self._idle.pop(task, None)
            writer.transport.abort()

    def _evict_idle(self) -> bool:
        """Close the connection idle the longest; False when every connection is busy."""
        if not self._idle:
            return False
        task, writer = self._idle.popitem(last=False)
        writer.transport.abort()
        task.cancel()
        self._conns.discard(task)
        return True

    async def _one_request(self, task: asyncio.Task[None], reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> bool:
        import asyncio

        """Read and answer one request; True to keep the connection for another."""
        limits = self.limits
        self._idle[task] = writer
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), limits.idle_timeout)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError):
            return False  # idle, slow, oversized or gone: close without a word
        finally:
            self._idle.pop(task, None)
        try:
            method, path, keep, accept = _parse_head(head)
        except _BadRequest:
            writer.write(_response(400, "text/plain", b"bad request\n", keep_alive=False))
            await asyncio.wait_for(writer.drain(), limits.write_timeout)
            return False
        if method not in ("GET", "HEAD"):
            code, ctype, body = 405, "text/plain", b"method not allowed\n"
            keep = False
        else:
            code, ctype, body = await self._answer(path, accept)
        writer.write(_response(code, ctype, body, keep_alive=keep, head_only=method == "HEAD"))
        await asyncio.wait_for(writer.drain(), limits.write_timeout)
        return keep

    async def _answer(self, path: str, accept: str = "") -> Response:
        import asyncio

        route = self.routes.get(path)
        if route is None:
            return 404, "text/plain", b"not found\n"
        if path in self.inline:
            return self._call(path, route, accept)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call, path, route, accept)

    @staticmethod
    def _call(path: str, route: Route, accept: str = "") -> Response:
        try:
            if isinstance(route, MetricsRoute):
                return route(accept)
            return route()
        except Exception as exc:  # a broken route is a 500, never a dead server
            log.warning("serving %s failed: %s", path, exc)
            return 500, "text/plain", f"error: {exc}\n".encode()


class MetricsRoute:
    """``/metrics``: the exposition in the format the scraper's ``Accept`` header asks for.

    ``negotiate`` is :meth:`CachedExposition.negotiate`: OpenMetrics 1.0.0 (``Content-Type:
    application/openmetrics-text; version=1.0.0; charset=utf-8``, ending ``# EOF``) when
    asked, as Prometheus does by default; the 0.0.4 text format otherwise.
    """

    def __init__(self, negotiate: Callable[[str], tuple[str, bytes]]) -> None:
        self.negotiate = negotiate

    def __call__(self, accept: str = "") -> Response:
        content_type, body = self.negotiate(accept)
        return 200, content_type, body


class _Liveness:
    """The liveness route: constant, so it is answered on the loop, never queued."""

    inline = True

    def __call__(self) -> Response:
        return json_response(200, {"status": "healthy"})


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
        routes[live] = _Liveness()
        if readiness is not None:
            def ready_route() -> Response:
                report = readiness()
                return json_response(report.http_status, report.to_dict())
            routes[ready] = ready_route
    return routes
