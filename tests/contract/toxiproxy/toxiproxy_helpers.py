"""Helpers for the Toxiproxy emulator's contract tests: a loopback echo upstream and socket
helpers. A module of its own (not conftest) so test modules can import it by a unique name."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

SEED = 7


class EchoServer:
    """A loopback TCP echo server on plain threads, recording what it received and when.

    Plain blocking sockets on purpose: the upstream must not share anything (loop, thread) with
    the emulator under test.
    """

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self.received: list[tuple[float, bytes]] = []
        self.accepted = 0
        self._start(self._accept_loop)

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def received_bytes(self) -> bytes:
        with self._lock:
            return b"".join(data for _, data in self.received)

    def first_received_at(self) -> float | None:
        with self._lock:
            return self.received[0][0] if self.received else None

    def _start(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name="echo-upstream", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
            self._start(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        # Blocking on purpose: a proxy pushing back (bandwidth) may hold a send for long; close()
        # wakes a blocked recv/send with shutdown().
        with self._lock:
            self._conns.append(conn)
        if self._stopped.is_set():  # accepted while close() was running
            conn.close()
            return
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                with self._lock:
                    self.received.append((time.monotonic(), data))
                try:
                    conn.sendall(data)
                except OSError:
                    return

    def close(self) -> None:
        self._stopped.set()
        self._listener.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(2)


def port_of(listen: str) -> int:
    return int(listen.rsplit(":", 1)[1])


def connect(listen: str, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port_of(listen)), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def recv_until_eof(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def roundtrip(sock: socket.socket, payload: bytes) -> float:
    """Send ``payload`` through the proxy to the echo server and time until all of it is back."""
    start = time.monotonic()
    sock.sendall(payload)
    echoed = recv_exactly(sock, len(payload))
    elapsed = time.monotonic() - start
    assert echoed == payload
    return elapsed


def refused(listen: str) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port_of(listen)), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def closed_by_peer(sock: socket.socket) -> bool:
    """True if the peer closed the connection (FIN or RST) without sending anything more."""
    try:
        return sock.recv(16) == b""
    except ConnectionResetError:
        return True


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
