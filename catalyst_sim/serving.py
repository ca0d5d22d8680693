"""Serve an ASGI app on a free loopback port in a background thread, and always stop it.

Every emulator and the Catalyst API are served this way. The socket is bound to port 0 before
uvicorn starts, so the OS picks the port and two runs in parallel never collide.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import uvicorn

# uvicorn's C parser (httptools) costs about a third less CPU per request than pure-Python h11,
# which dominates the emulators' per-request cost (measured by `catalyst-sim bench kube`).
KEEP_ALIVE_S = 75  # seconds an idle keep-alive connection stays open (nginx and Go servers use 75)
HTTP_PARSER = "httptools" if importlib.util.find_spec("httptools") else "h11"


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (a dependency; uvicorn's "standard" extra picks it too):
    measured ~25% less CPU per Kubernetes API request and ~13% less wall time for a bundle install."""
    try:
        import uvloop
    except ImportError:  # e.g. a platform uvloop does not support: the standard loop serves the same
        return None
    return uvloop.new_event_loop


class ServerStartError(RuntimeError):
    pass


def bind_free_socket(host: str = "127.0.0.1") -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio disables Nagle only on accepted sockets that say TCP; without
    # it every keep-alive response after the first waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.set_inheritable(True)
    return sock


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free now, for servers that must bind it themselves (nats-server, bao)."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """One uvicorn server in one daemon thread with its own event loop."""

    def __init__(self, app: Any, name: str, host: str = "127.0.0.1") -> None:
        self.app = app
        self.name = name
        self.host = host
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        if self._sock is None:
            raise ServerStartError(f"{self.name} is not started")
        return int(self._sock.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> ServerThread:
        self._sock = bind_free_socket(self.host)
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="on", loop="asyncio",
            http=HTTP_PARSER, ws="none", timeout_graceful_shutdown=2,
            # Idle connections outlive the clients' own expiry (httpx: 5 s), so a client never sends on a
            # connection the server is closing at that moment ("connection reset" on a reused socket).
            timeout_keep_alive=KEEP_ALIVE_S,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=f"catalyst-sim:{self.name}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                self.stop()
                raise ServerStartError(f"{self.name} failed to start: {self._error!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise ServerStartError(f"{self.name} did not start within {timeout}s")
            time.sleep(0.002)
        return self

    def _run(self) -> None:
        assert self._server is not None and self._sock is not None
        try:
            with asyncio.Runner(loop_factory=_loop_factory()) as runner:
                runner.run(self._serve())
        except BaseException as exc:  # reported to start()/stop(), never lost silently
            self._error = exc

    async def _serve(self) -> None:
        assert self._server is not None and self._sock is not None
        self.loop = asyncio.get_running_loop()
        await self._server.serve(sockets=[self._sock])

    def run_coroutine(self, coro: Any, timeout: float | None = 30.0) -> Any:
        """Run a coroutine on this server's loop from another thread and wait for its result."""
        if self.loop is None:
            raise ServerStartError(f"{self.name} is not running")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(timeout)
        if self._sock is not None:
            self._sock.close()
        self._thread = None

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
