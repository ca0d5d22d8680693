"""Fixtures for the Toxiproxy emulator's contract tests: the emulator, its clients, an echo upstream.

The emulator is started once per module (starting uvicorn per test would dominate the run) and
emptied after every test, so tests never see each other's proxies.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from toxiproxy.api import APIConsumer
from toxiproxy.server import Toxiproxy
from toxiproxy_helpers import SEED, EchoServer

from catalyst_sim.backends.embedded.toxiproxy import EmbeddedToxiproxy


@pytest.fixture(scope="module")
def toxiproxy_server() -> Iterator[EmbeddedToxiproxy]:
    with EmbeddedToxiproxy(seed=SEED) as server:
        yield server


@pytest.fixture
def tp(toxiproxy_server: EmbeddedToxiproxy) -> Iterator[EmbeddedToxiproxy]:
    """The module's emulator, with every proxy deleted after the test."""
    yield toxiproxy_server
    toxiproxy_server.clear()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def api(tp: EmbeddedToxiproxy) -> Iterator[httpx.Client]:
    # A new connection per request: on a keep-alive connection the shared ServerThread's socket
    # (proto 0, so asyncio leaves Nagle on) makes every response after the first wait ~40 ms.
    with httpx.Client(base_url=tp.url, timeout=10,
                      limits=httpx.Limits(max_keepalive_connections=0)) as client:
        yield client


@pytest.fixture
def client(tp: EmbeddedToxiproxy) -> Iterator[Toxiproxy]:
    """toxiproxy-python pointed at the emulator. ``update_api_consumer`` sets class attributes,
    so they are restored afterwards for whatever runs next in this process."""
    saved = (APIConsumer.host, APIConsumer.port)
    server = Toxiproxy()
    server.update_api_consumer(tp.host, tp.port)
    try:
        yield server
    finally:
        APIConsumer.host, APIConsumer.port = saved
