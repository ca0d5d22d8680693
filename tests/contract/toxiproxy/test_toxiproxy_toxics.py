"""Behaviour of the emulated toxics on real loopback sockets, against a tiny echo upstream.

Timing assertions compare with a baseline measured in the same test and only bound from below
tightly; upper bounds are several times the configured value, because CI machines are noisy.
Measured numbers are attached to the JUnit report as test-suite properties.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import httpx
import pytest
from toxiproxy.server import Toxiproxy
from toxiproxy_helpers import (
    SEED,
    EchoServer,
    closed_by_peer,
    connect,
    recv_exactly,
    recv_until_eof,
    refused,
    roundtrip,
    wait_for,
)

from catalyst_sim.backends.embedded.toxiproxy import EmbeddedToxiproxy

Record = Callable[[str, object], None]


def make_proxy(api: httpx.Client, echo: EchoServer, name: str = "p") -> str:
    response = api.post("/proxies", json={"name": name, "listen": "127.0.0.1:0", "upstream": echo.address})
    assert response.status_code == 201, response.text
    return str(response.json()["listen"])


def add_toxic(api: httpx.Client, proxy: str, toxic_type: str, stream: str = "downstream",
              toxicity: float = 1.0, **attributes: int) -> str:
    response = api.post(f"/proxies/{proxy}/toxics", json={"type": toxic_type, "stream": stream,
                                                          "toxicity": toxicity, "attributes": attributes})
    assert response.status_code == 200, response.text
    return str(response.json()["name"])


def baseline(sock: socket.socket, rounds: int = 3) -> float:
    return max(roundtrip(sock, b"baseline") for _ in range(rounds))


def test_latency_downstream(api: httpx.Client, echo: EchoServer, record_testsuite_property: Record) -> None:
    listen = make_proxy(api, echo)
    with connect(listen) as sock:
        base = baseline(sock)
        add_toxic(api, "p", "latency", latency=200)
        elapsed = [roundtrip(sock, b"ping %d" % i) for i in range(3)]
    record_testsuite_property("latency_200ms_baseline_s", round(base, 4))
    record_testsuite_property("latency_200ms_measured_s", [round(e, 4) for e in elapsed])
    for value in elapsed:
        assert value >= 0.19
        assert value < base + 0.2 * 5


def test_latency_is_per_chunk_not_serialised(api: httpx.Client, echo: EchoServer) -> None:
    """Chunks are delayed from the time they were read, so back-to-back writes overlap their waits."""
    listen = make_proxy(api, echo)
    add_toxic(api, "p", "latency", latency=200)
    with connect(listen) as sock:
        start = time.monotonic()
        for i in range(5):
            sock.sendall(b"%d" % i)
            time.sleep(0.01)
        assert recv_exactly(sock, 5) == b"01234"
        elapsed = time.monotonic() - start
    assert 0.19 <= elapsed < 0.2 * 5 + 0.05 * 5


def test_latency_stream_is_honoured(api: httpx.Client, echo: EchoServer) -> None:
    listen = make_proxy(api, echo)
    add_toxic(api, "p", "latency", stream="upstream", latency=200)
    with connect(listen) as sock:
        sent = time.monotonic()
        roundtrip(sock, b"up")
        arrived = echo.first_received_at()
    assert arrived is not None and arrived - sent >= 0.19  # held on the way to the server

    api.delete("/proxies/p/toxics/latency_upstream")
    echo.received.clear()
    add_toxic(api, "p", "latency", stream="downstream", latency=200)
    with connect(listen) as sock:
        sent = time.monotonic()
        elapsed = roundtrip(sock, b"down")
        arrived = echo.first_received_at()
    assert arrived is not None and arrived - sent < 0.15  # the server got it at once
    assert elapsed >= 0.19  # the answer was held on the way back


def test_latency_jitter_stays_in_range(api: httpx.Client, echo: EchoServer) -> None:
    listen = make_proxy(api, echo)
    add_toxic(api, "p", "latency", latency=100, jitter=50)
    with connect(listen) as sock:
        elapsed = [roundtrip(sock, b"j") for _ in range(5)]
    assert all(0.049 <= e < 0.15 * 5 for e in elapsed)


def test_bandwidth_limits_throughput(api: httpx.Client, echo: EchoServer,
                                     record_testsuite_property: Record) -> None:
    listen = make_proxy(api, echo)
    payload = bytes(range(256)) * 200  # 51,200 bytes
    with connect(listen) as sock:
        unlimited = roundtrip(sock, payload)
        add_toxic(api, "p", "bandwidth", rate=100)  # 100 KB/s = 100,000 bytes/s → 0.512 s
        limited = roundtrip(sock, payload)
    expected = len(payload) / 100_000
    record_testsuite_property("bandwidth_100KBps_unlimited_s", round(unlimited, 4))
    record_testsuite_property("bandwidth_100KBps_expected_s", expected)
    record_testsuite_property("bandwidth_100KBps_measured_s", round(limited, 4))
    assert limited >= expected * 0.9
    assert limited < expected * 5
    assert unlimited < limited


def test_bandwidth_upstream_paces_what_the_server_receives(api: httpx.Client, echo: EchoServer) -> None:
    listen = make_proxy(api, echo)
    add_toxic(api, "p", "bandwidth", stream="upstream", rate=50)  # 50,000 bytes/s
    payload = b"x" * 20_000  # → 0.4 s
    with connect(listen) as sock:
        elapsed = roundtrip(sock, payload)
    assert elapsed >= 0.4 * 0.9


def test_slow_close_delays_the_close(api: httpx.Client, echo: EchoServer) -> None:
    listen = make_proxy(api, echo)
    add_toxic(api, "p", "slow_close", delay=300)
    with connect(listen) as sock:
        roundtrip(sock, b"bye")
        start = time.monotonic()
        sock.shutdown(socket.SHUT_WR)  # client FIN → upstream closed → echo closes → delayed FIN
        assert recv_until_eof(sock) == b""
        elapsed = time.monotonic() - start
    assert 0.29 <= elapsed < 0.3 * 5


def test_timeout_zero_holds_data_until_removed(api: httpx.Client, echo: EchoServer) -> None:
    listen = make_proxy(api, echo)
    add_toxic(api, "p", "timeout", timeout=0)
    with connect(listen) as sock:
        sock.sendall(b"anyone there?")
        sock.settimeout(0.4)
        with pytest.raises(TimeoutError):
            sock.recv(64)  # nothing comes back, and the connection stays open
        assert echo.received_bytes() == b"anyone there?"  # the upstream stream is untouched
        sock.settimeout(5)
        assert api.delete("/proxies/p/toxics/timeout_downstream").status_code == 204
        assert recv_until_eof(sock) == b""  # as in Go, removing a timeout toxic closes the link


def test_timeout_closes_after_timeout(api: httpx.Client, echo: EchoServer) -> None:
    listen = make_proxy(api, echo)
    add_toxic(api, "p", "timeout", stream="upstream", timeout=150)
    with connect(listen) as sock:
        start = time.monotonic()
        sock.sendall(b"lost")
        assert recv_until_eof(sock) == b""
        elapsed = time.monotonic() - start
    assert 0.14 <= elapsed < 0.15 * 5
    assert echo.received_bytes() == b""  # upstream timeout: data never reached the server


def test_reset_peer_sends_rst(api: httpx.Client, echo: EchoServer) -> None:
    listen = make_proxy(api, echo)
    add_toxic(api, "p", "reset_peer", timeout=0)
    with connect(listen) as sock:
        sock.sendall(b"hello")
        with pytest.raises(ConnectionResetError):
            sock.recv(64)


def test_reset_peer_after_timeout(api: httpx.Client, echo: EchoServer) -> None:
    listen = make_proxy(api, echo)
    add_toxic(api, "p", "reset_peer", stream="upstream", timeout=200)
    with connect(listen) as sock:
        start = time.monotonic()
        sock.sendall(b"hello")
        with pytest.raises(ConnectionResetError):
            sock.recv(64)
        elapsed = time.monotonic() - start
    assert 0.19 <= elapsed < 0.2 * 5
    assert echo.received_bytes() == b""  # the triggering data is swallowed


def test_limit_data_downstream(api: httpx.Client, echo: EchoServer) -> None:
    listen = make_proxy(api, echo)
    add_toxic(api, "p", "limit_data", bytes=10)
    with connect(listen) as sock:
        sock.sendall(b"0123456789abcdefghij")
        assert recv_until_eof(sock) == b"0123456789"
    assert echo.received_bytes() == b"0123456789abcdefghij"


def test_limit_data_upstream_counts_across_writes(api: httpx.Client, echo: EchoServer) -> None:
    listen = make_proxy(api, echo)
    add_toxic(api, "p", "limit_data", stream="upstream", bytes=5)
    with connect(listen) as sock:
        roundtrip(sock, b"ab")
        sock.sendall(b"cdefgh")
        # The upstream socket is closed outright after "cde" (Go's dest.Close()), so the echo of
        # "cde" is lost and the client sees the close: no TCP half-close through Toxiproxy.
        assert recv_until_eof(sock) == b""
    assert wait_for(lambda: echo.received_bytes() == b"abcde")


def test_slicer_splits_writes(api: httpx.Client, echo: EchoServer) -> None:
    listen = make_proxy(api, echo)
    add_toxic(api, "p", "slicer", average_size=8, size_variation=2, delay=20_000)
    payload = bytes(range(64))
    with connect(listen) as sock:
        sock.sendall(payload)
        reads: list[bytes] = []
        while sum(map(len, reads)) < len(payload):
            reads.append(sock.recv(1024))
            assert reads[-1]
    assert b"".join(reads) == payload
    assert len(reads) >= 4
    assert max(map(len, reads)) < len(payload)


def test_toxicity_zero_never_applies(api: httpx.Client, echo: EchoServer) -> None:
    listen = make_proxy(api, echo)
    add_toxic(api, "p", "latency", toxicity=0, latency=1000)
    add_toxic(api, "p", "limit_data", stream="upstream", toxicity=0, bytes=1)
    for _ in range(5):
        with connect(listen) as sock:
            assert roundtrip(sock, b"untouched") < 0.5


def _limit_pattern(server: EmbeddedToxiproxy, echo: EchoServer, connections: int = 16) -> list[bool]:
    """For each new connection, did a toxicity-0.5 limit_data toxic apply?"""
    with httpx.Client(base_url=server.url, limits=httpx.Limits(max_keepalive_connections=0)) as api:
        listen = make_proxy(api, echo, name="seeded")
        add_toxic(api, "seeded", "limit_data", toxicity=0.5, bytes=1)
        pattern = []
        for _ in range(connections):
            with connect(listen) as sock:
                sock.sendall(b"abcd")
                pattern.append(_read_until(sock, 4) == b"a")
        return pattern


def _read_until(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size and (chunk := sock.recv(size)):
        data += chunk
    return data


def test_toxicity_is_seeded_per_connection(echo: EchoServer) -> None:
    with EmbeddedToxiproxy(seed=SEED) as first:
        pattern = _limit_pattern(first, echo)
    with EmbeddedToxiproxy(seed=SEED) as second:
        assert _limit_pattern(second, echo) == pattern  # same seed → same connections affected
    with EmbeddedToxiproxy(seed=SEED + 1) as other:
        assert _limit_pattern(other, echo) != pattern
    assert True in pattern and False in pattern


def test_disable_refuses_then_reenable_same_port(client: Toxiproxy, echo: EchoServer) -> None:
    proxy = client.create(upstream=echo.address, name="switch")
    with connect(proxy.listen) as live:
        roundtrip(live, b"alive")
        proxy.disable()
        assert closed_by_peer(live)  # existing connections are closed
    assert refused(proxy.listen)
    proxy.enable()
    assert client.get_proxy("switch").listen == proxy.listen
    with connect(proxy.listen) as sock:
        roundtrip(sock, b"back")


def test_toxics_apply_to_live_connections(api: httpx.Client, echo: EchoServer) -> None:
    listen = make_proxy(api, echo)
    with connect(listen) as sock:
        base = baseline(sock)
        add_toxic(api, "p", "latency", latency=200)
        assert roundtrip(sock, b"slow") >= 0.19
        api.post("/proxies/p/toxics/latency_downstream", json={"attributes": {"latency": 400}})
        assert roundtrip(sock, b"slower") >= 0.39
        api.delete("/proxies/p/toxics/latency_downstream")
        assert roundtrip(sock, b"fast") < base + 0.15


def test_removing_a_toxic_releases_held_data(api: httpx.Client, echo: EchoServer) -> None:
    listen = make_proxy(api, echo)
    add_toxic(api, "p", "latency", latency=5000)
    with connect(listen) as sock:
        sock.sendall(b"stuck")
        time.sleep(0.1)
        start = time.monotonic()
        threading.Timer(0.1, lambda: api.delete("/proxies/p/toxics/latency_downstream")).start()
        assert recv_exactly(sock, 5) == b"stuck"
        assert time.monotonic() - start < 2


def test_toxics_chain_in_order(api: httpx.Client, echo: EchoServer) -> None:
    listen = make_proxy(api, echo)
    add_toxic(api, "p", "latency", latency=100)
    api.post("/proxies/p/toxics", json={"type": "latency", "name": "more", "attributes": {"latency": 100}})
    with connect(listen) as sock:
        assert roundtrip(sock, b"twice") >= 0.19  # two latency toxics on one stream add up


def test_unreachable_upstream_closes_the_client(api: httpx.Client) -> None:
    dead = socket.create_server(("127.0.0.1", 0))
    address = f"127.0.0.1:{dead.getsockname()[1]}"
    dead.close()
    listen = api.post("/proxies", json={"name": "dead", "listen": "127.0.0.1:0", "upstream": address}).json()
    with connect(listen["listen"]) as sock:
        assert closed_by_peer(sock)
