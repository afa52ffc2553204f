"""A real "slow loris" TCP peer: it accepts, reads the request, then answers one byte every
``interval`` seconds, forever. Socket timeouts per read never fire against it; only a total
deadline ends a call to it."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

ANSWER = b"HTTP/1.1 200 OK\r\nX-Drip: " + b"z" * 10_000


class SlowPeer:
    def __init__(self, interval: float = 2.0, answer: bytes = ANSWER) -> None:
        self.interval = interval
        self.answer = answer
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.connected = threading.Event()
        self.connections = 0
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            self.connections += 1
            self.connected.set()
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            conn.settimeout(0.5)
            with contextlib.suppress(TimeoutError):
                conn.recv(65536)  # the request (or its start); never needed whole
            for i in range(len(self.answer)):
                conn.sendall(self.answer[i:i + 1])
                if self._stop.wait(self.interval):
                    return

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.close()


@contextlib.contextmanager
def slow_peer(interval: float = 2.0, answer: bytes = ANSWER) -> Iterator[SlowPeer]:
    peer = SlowPeer(interval, answer)
    try:
        yield peer
    finally:
        peer.close()
