"""``EmbeddedToxiproxy``: the Toxiproxy emulator as one object the embedded backend starts and stops.

The HTTP API and every proxy's sockets run on the same event loop — uvicorn's, in the
``ServerThread`` daemon thread — so API handlers change proxies and toxics directly, without locks
between threads, and a toxic added through the API is on the live links before the response is
sent. ``stop()`` first stops every proxy on that loop (listeners, connections, link tasks), then
stops uvicorn and joins its thread; the app's lifespan shutdown does the same again as a safety net
if the server is ever stopped another way.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any

from catalyst_sim.serving import ServerStartError, ServerThread

from .api import create_app
from .proxy import ProxyCollection
from .state import TOXIPROXY_VERSION

log = logging.getLogger(__name__)


class EmbeddedToxiproxy:
    """A Toxiproxy-compatible server on a free loopback port.

    ``seed`` drives every random choice (toxicity rolls, latency jitter, slicer sizes) per
    connection, so a scenario replayed with the same seed meets the same faults.
    """

    version = TOXIPROXY_VERSION

    def __init__(self, seed: int = 0, host: str = "127.0.0.1") -> None:
        self.seed = seed
        self._host = host
        self.collection = ProxyCollection(seed)
        self.app = create_app(self.collection)
        self._server: ServerThread | None = None

    def start(self) -> EmbeddedToxiproxy:
        if self._server is None:
            self._server = ServerThread(self.app, "toxiproxy", host=self._host).start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        try:
            if server.loop is not None and server.loop.is_running():
                server.run_coroutine(self.collection.close(), timeout=10)
        except Exception:  # the lifespan shutdown below retries; never leave the thread running
            log.exception("toxiproxy: stopping proxies failed")
        finally:
            server.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    def _require(self) -> ServerThread:
        if self._server is None:
            raise ServerStartError("toxiproxy is not started")
        return self._server

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._require().port

    @property
    def url(self) -> str:
        return self._require().url

    def _call(self, coro: Any) -> Any:
        return self._require().run_coroutine(coro)

    def reset(self) -> None:
        """As ``POST /reset``: enable every proxy and remove every toxic."""
        self._call(self.collection.reset())

    def clear(self) -> None:
        """Delete every proxy (closing its port) — a clean server for the next scenario."""
        self._call(self.collection.clear())

    def __enter__(self) -> EmbeddedToxiproxy:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
