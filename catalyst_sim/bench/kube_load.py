"""A load generator for ``bench kube``: ConfigMap creates from a separate process, K connections.

The sequential phases of ``bench kube`` run client and emulator in one process, so every request
pays for both sides in turn on one GIL. Real clients of an API server (controllers, kubectl, CI
jobs) are other processes with several connections open. This module is that client: it runs as
``python -m catalyst_sim.bench.kube_load``, creates ``--count`` ConfigMaps spread over
``--connections`` kept-alive HTTPS connections on one event loop, and prints one JSON line.

It speaks raw HTTP/1.1: each request is written as bytes and each response parsed by httptools
(uvicorn's C parser). A general-purpose client (httpx) spends about 1.7 ms of CPU per request here,
more than the emulator itself, so it would measure the client; this one spends a small fraction of that,
which is what "creates per second through raw HTTP" asks for. Every response is still checked: status
201 and a body naming the object that was asked for.

The bearer token comes from the ``CATALYST_BENCH_TOKEN`` environment variable, never argv, so it
does not show in a process listing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import sys
import time
from urllib.parse import urlsplit

import httptools

TOKEN_ENV = "CATALYST_BENCH_TOKEN"
WINDOW = 1_000  # completions in the "first" and "last" windows of the run


class _Connection(asyncio.Protocol):
    """One kept-alive connection: send a request, await its parsed response, repeat."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._response: asyncio.Future[tuple[int, bytes]] | None = None
        self._body: list[bytes] = []
        self._lost: Exception | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"unparseable response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc or ConnectionError("the server closed the connection")
        self._fail(self._lost)

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._response is not None and not self._response.done():
            self._response.set_result((self._parser.get_status_code(), b"".join(self._body)))
        self._body = []

    def _fail(self, exc: Exception) -> None:
        if self._response is not None and not self._response.done():
            self._response.set_exception(exc)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self._lost is not None or self.transport is None:
            raise ConnectionError(f"connection unusable: {self._lost}")
        self._response = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self._response


def _request(method: str, host: str, path: str, token: str, body: bytes = b"") -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Accept: application/json\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _run(server: str, ca: str, namespace: str, count: int, connections: int, prefix: str) -> dict[str, object]:
    url = urlsplit(server)
    if url.scheme != "https" or not url.hostname or not url.port:
        raise ValueError(f"--server must be an https URL with a port, got {server!r}")
    context = ssl.create_default_context(cafile=ca)
    token = os.environ[TOKEN_ENV]
    host = f"{url.hostname}:{url.port}"
    prefix_path = url.path.rstrip("/")
    path = f"{prefix_path}/api/v1/namespaces/{namespace}/configmaps"
    loop = asyncio.get_running_loop()
    links: list[_Connection] = []
    for _ in range(connections):
        _, link = await loop.create_connection(_Connection, url.hostname, url.port, ssl=context)
        links.append(link)
    # The TLS handshakes and a first request on each connection happen before the clock starts.
    for link in links:
        status, _ = await link.request(_request("GET", host, f"{prefix_path}/version", token))
        if status != 200:
            raise ConnectionError(f"GET /version answered HTTP {status}")
    latencies: list[float] = []
    completed: list[float] = []  # perf_counter of each completion, in completion order
    errors: list[str] = []

    async def worker(link: _Connection, index: int) -> None:
        for i in range(index, count, connections):
            name = f"{prefix}-{i:06d}"
            body = json.dumps({"metadata": {"name": name}, "data": {"index": str(i)}}).encode()
            before = time.perf_counter()
            try:
                status, answer = await link.request(_request("POST", host, path, token, body))
            except (ConnectionError, OSError) as exc:
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
                return
            after = time.perf_counter()
            if status != 201 or _created_name(answer) != name:
                errors.append(f"{name}: HTTP {status} {answer[:200].decode(errors='replace')}")
                return
            latencies.append(after - before)
            completed.append(after)

    began = time.perf_counter()
    await asyncio.gather(*(worker(link, i) for i, link in enumerate(links)))
    seconds = time.perf_counter() - began
    for link in links:
        if link.transport is not None:
            link.transport.close()
    return _summary(latencies, completed, began, seconds, connections, errors)


def _created_name(answer: bytes) -> str | None:
    try:
        return json.loads(answer)["metadata"]["name"]
    except (ValueError, KeyError, TypeError):
        return None


def _summary(latencies: list[float], completed: list[float], began: float, seconds: float, connections: int,
             errors: list[str]) -> dict[str, object]:
    done = sorted(latencies)

    def at(q: float) -> float | None:
        return round(done[min(len(done) - 1, int(q * len(done)))] * 1000, 3) if done else None

    def window_rate(times: list[float], start: float) -> float | None:
        span = times[-1] - start if times else 0.0
        return round(len(times) / span, 1) if span > 0 else None

    window = min(WINDOW, len(completed) // 2)
    return {
        "count": len(done), "connections": connections, "seconds": round(seconds, 3),
        "per_s": round(len(done) / seconds, 1) if seconds > 0 else None,
        "latency_ms": {"p50": at(0.5), "p99": at(0.99)},
        # Rates of the first and last `window` completions: per-create cost must not grow with the store.
        "window": window,
        "first_window_per_s": window_rate(completed[:window], began) if window else None,
        "last_window_per_s": window_rate(completed[-window:], completed[-window - 1]) if window else None,
        "errors": errors[:5],
    }


def run(server: str, ca: str, namespace: str, count: int, connections: int, prefix: str) -> dict[str, object]:
    """Create ``count`` ConfigMaps named ``{prefix}-NNNNNN`` over ``connections`` connections."""
    return asyncio.run(_run(server, ca, namespace, count, connections, prefix))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True, help="the cluster's API URL")
    parser.add_argument("--ca", required=True, help="PEM file of the emulator's CA")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--prefix", default="load")
    args = parser.parse_args(argv)
    if TOKEN_ENV not in os.environ:
        parser.error(f"set {TOKEN_ENV} to the cluster's bearer token")
    if args.count < 1 or args.connections < 1:
        parser.error("--count and --connections must be >= 1")
    print(json.dumps(run(args.server, args.ca, args.namespace, args.count, args.connections, args.prefix)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
