"""``EmbeddedToxiproxy`` lifecycle: everything it started is gone after ``stop()``.

DESIGN §4 asks that every thread and port a run opens is closed at the end, also on failure, so
these tests look at the OS: threads alive, ports refusing, client sockets closed.
"""

from __future__ import annotations

import threading

import httpx
import pytest
from toxiproxy_helpers import EchoServer, closed_by_peer, connect, refused, roundtrip, wait_for

from catalyst_sim.backends.embedded.toxiproxy import EmbeddedToxiproxy
from catalyst_sim.serving import ServerStartError


def new_sim_threads(before: set[int]) -> list[str]:
    return [t.name for t in threading.enumerate()
            if t.ident not in before and t.name.startswith("catalyst-sim:") and t.is_alive()]


def test_stop_releases_threads_ports_and_connections(echo: EchoServer) -> None:
    before = {t.ident for t in threading.enumerate() if t.ident is not None}
    server = EmbeddedToxiproxy(seed=3).start()
    api_listen = f"127.0.0.1:{server.port}"
    assert new_sim_threads(before) == ["catalyst-sim:toxiproxy"]
    with httpx.Client(base_url=server.url) as api:
        plain = api.post("/proxies", json={"name": "plain", "listen": "127.0.0.1:0",
                                           "upstream": echo.address}).json()["listen"]
        held = api.post("/proxies", json={"name": "held", "listen": "127.0.0.1:0",
                                          "upstream": echo.address}).json()["listen"]
        api.post("/proxies/held/toxics", json={"type": "latency", "attributes": {"latency": 10_000}})
        api.post("/proxies", json={"name": "off", "listen": "127.0.0.1:0", "upstream": echo.address,
                                   "enabled": False})
    live = connect(plain)
    holding = connect(held)
    try:
        roundtrip(live, b"alive")
        holding.sendall(b"held for ten seconds")  # a latency toxic is sleeping on this chunk
        assert wait_for(lambda: echo.accepted == 2)

        server.stop()

        assert new_sim_threads(before) == []
        assert refused(api_listen)
        assert refused(plain) and refused(held)
        assert closed_by_peer(live) and closed_by_peer(holding)
    finally:
        live.close()
        holding.close()
    server.stop()  # idempotent


def test_lifespan_shutdown_also_stops_proxies(echo: EchoServer) -> None:
    """If the ASGI server is stopped without ``EmbeddedToxiproxy.stop()``, proxies still close."""
    server = EmbeddedToxiproxy().start()
    with httpx.Client(base_url=server.url) as api:
        listen = api.post("/proxies", json={"name": "p", "listen": "127.0.0.1:0",
                                            "upstream": echo.address}).json()["listen"]
    with connect(listen) as sock:
        roundtrip(sock, b"x")
        assert server._server is not None
        server._server.stop()  # bypass EmbeddedToxiproxy.stop() on purpose
        assert refused(listen)
        assert closed_by_peer(sock)
    server.stop()


def test_python_side_reset_and_clear(echo: EchoServer) -> None:
    with EmbeddedToxiproxy() as server, httpx.Client(base_url=server.url) as api:
        api.post("/proxies", json={"name": "p", "listen": "127.0.0.1:0", "upstream": echo.address,
                                   "enabled": False})
        api.post("/proxies/p/toxics", json={"type": "latency"})
        server.reset()
        proxy = api.get("/proxies/p").json()
        assert proxy["enabled"] is True and proxy["toxics"] == []
        server.clear()
        assert api.get("/proxies").json() == {}
        assert refused(proxy["listen"])


def test_not_started_has_no_address() -> None:
    server = EmbeddedToxiproxy()
    assert server.running is False
    with pytest.raises(ServerStartError):
        _ = server.url
    server.stop()  # stopping a server that never started is harmless
    with server:
        assert server.running and server.start() is server and server.url.startswith("http://127.0.0.1:")
    assert server.running is False
