"""The data plane: an asyncio TCP listener per proxy, and per connection two links with toxic chains.

It follows the real Toxiproxy's structure, so a client sees the same behaviour:

* A proxy listens on ``listen`` (port 0 → an OS-chosen port, written back into ``listen``). Each
  accepted client gets a fresh upstream connection; if that dial fails the client is closed.
* A connection is two **links**, ``upstream`` (client → server) and ``downstream`` (server →
  client). A link reads its source in chunks of up to 32 KiB, stamps each chunk with the time it
  was read, passes it through that stream's toxics in the order they were added, and writes what
  comes out to its destination. When a link ends (its source hit EOF, or a toxic closed it) it
  fully closes its destination, as Go's ``dest.Close()`` does, so the other link then sees EOF and
  the whole connection goes down — there is no TCP half-close through Toxiproxy.
* **Toxicity** is rolled once per (connection, toxic): ``random() < toxicity`` decides whether the
  toxic acts on that link or is a no-op there. The rolls, jitter and slicer sizes come from a
  ``random.Random`` per link seeded from (seed, proxy name, connection number, stream), so the same
  seed gives the same faults connection by connection however asyncio interleaves the connections.

Where the Go implementation runs one goroutine per toxic joined by channels, a link here runs one
task that pushes each chunk through the chain with async generators; latency is measured from the
chunk's read time (as in Go), so a held chunk does not delay the reading of the next ones.

Changes to toxics reach live connections, as in the real server:

* a toxic added to a proxy is appended to every live link of its stream (chunks already inside
  the chain finish on the chain they entered);
* a toxic removed is skipped by all chunks from then on, and a chunk it is holding (latency,
  bandwidth, slicer, slow_close) is released at once — Go "interrupts" the toxic the same way;
* an updated toxic re-rolls its toxicity and releases what it holds (Go restarts it); limit_data
  keeps its byte count across updates;
* removing a ``timeout`` toxic closes the links of its stream whether or not it applied there (Go's
  ``Cleanup`` closes the stub); ``POST /reset`` removes toxics the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno as errno_module
import ipaddress
import logging
import os
import random
import socket
import struct
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from .state import (
    DOWNSTREAM,
    PROXY_ALREADY_EXISTS,
    PROXY_NOT_FOUND,
    STREAMS,
    TOXIC_NOT_FOUND,
    UPSTREAM,
    Proxy,
    ProxyInput,
    Toxic,
    ToxiproxyError,
    join_host_port,
    parse_proxy_update,
    parse_toxic,
    split_host_port,
)

log = logging.getLogger(__name__)

#: Go's ``io.Copy`` buffer: the most a link reads from its source at once.
READ_SIZE = 32 * 1024
#: Chunks a link may read ahead of its chain. Go gives a latency toxic a 1024-chunk channel, so
#: data keeps being read (and time-stamped) while earlier chunks are held; other toxics have
#: unbuffered channels, so a slow toxic (bandwidth) pushes back on the sender almost at once.
LATENCY_READ_AHEAD = 1024
DEFAULT_READ_AHEAD = 2


class Chunk:
    """Bytes read from a link's source, with the loop time at which they were read."""

    __slots__ = ("data", "ts")

    def __init__(self, data: bytes, ts: float) -> None:
        self.data = data
        self.ts = ts


class LinkClosed(Exception):
    """A toxic ended its link: toxics after ``after`` still see the close (slow_close delays it),
    and ``reset`` means the connection is torn down with RST instead of FIN."""

    def __init__(self, after: ActiveToxic | None, reset: bool = False) -> None:
        super().__init__("link closed")
        self.after = after
        self.reset = reset


class ActiveToxic:
    """A toxic attached to one link: whether it applies there, and its per-link state."""

    __slots__ = ("_interrupt", "applies", "deadline", "debt", "removed", "removed_index", "toxic",
                 "transmitted")

    def __init__(self, toxic: Toxic, rng: random.Random) -> None:
        self.toxic = toxic
        self.applies = rng.random() < toxic.toxicity
        self.removed = False
        self.removed_index = 0
        self._interrupt = asyncio.Event()
        self.transmitted = 0  # limit_data: bytes let through so far on this link
        self.debt = 0.0  # bandwidth: seconds of sending the link still owes
        self.deadline = 0.0  # timeout: the link closes if no data arrives by then
        self.restart_timer()

    def restart_timer(self) -> None:
        if self.toxic.type == "timeout":
            self.deadline = _now() + self.toxic.attributes["timeout"] / 1000

    def interrupt(self) -> None:
        """Release whatever this toxic is holding (Go's ``InterruptToxic``)."""
        self._interrupt.set()
        self._interrupt = asyncio.Event()

    async def sleep_until(self, when: float) -> bool:
        """Sleep until loop time ``when``; False if the toxic was updated or removed meanwhile."""
        if self.removed:
            return False
        delay = when - _now()
        if delay <= 0:
            return True
        event = self._interrupt
        try:
            async with asyncio.timeout(delay):
                await event.wait()
        except TimeoutError:
            return True
        return False

    async def sleep_for(self, seconds: float) -> bool:
        return await self.sleep_until(_now() + seconds)


def _now() -> float:
    return asyncio.get_running_loop().time()


# --- toxics: each is an async generator from one input chunk to the chunks it lets through ------

Pipe = Callable[["Link", ActiveToxic, Chunk], AsyncIterator[Chunk]]


async def _noop(link: Link, at: ActiveToxic, chunk: Chunk) -> AsyncIterator[Chunk]:
    yield chunk


async def _latency(link: Link, at: ActiveToxic, chunk: Chunk) -> AsyncIterator[Chunk]:
    """Deliver each chunk ``latency ± jitter`` ms after it was read (jitter uniform in [-j, j))."""
    delay = at.toxic.attributes["latency"]
    jitter = at.toxic.attributes["jitter"]
    if jitter > 0:
        delay += link.rng.randrange(2 * jitter) - jitter
    target = chunk.ts + delay / 1000
    if await at.sleep_until(target):
        chunk.ts = max(chunk.ts, target)  # a later latency toxic adds its delay on top
    yield chunk


async def _bandwidth(link: Link, at: ActiveToxic, chunk: Chunk) -> AsyncIterator[Chunk]:
    """Pace output at ``rate`` KB/s (1 KB = 1000 bytes, as in Go); rate ≤ 0 means unlimited.

    Like Go, a chunk is paid for before it is sent, chunks larger than 100 ms worth of data go out
    in 100 ms slices, and oversleeping is credited to the next chunk so the average rate holds.
    """
    rate = at.toxic.attributes["rate"]
    if rate <= 0:
        at.debt = 0.0
        yield chunk
        return
    data = chunk.data
    at.debt += len(data) / (rate * 1000)
    slice_size = rate * 100
    while len(data) > slice_size:
        if not await at.sleep_for(0.1):
            at.debt = 0.0
            yield Chunk(data, chunk.ts)
            return
        yield Chunk(data[:slice_size], chunk.ts)
        data = data[slice_size:]
        at.debt -= 0.1
    start = _now()
    if not await at.sleep_for(at.debt):
        at.debt = 0.0
    else:
        at.debt -= _now() - start
    yield Chunk(data, chunk.ts)


async def _slow_close(link: Link, at: ActiveToxic, chunk: Chunk) -> AsyncIterator[Chunk]:
    yield chunk  # data passes; the delay is on close (see _slow_close_eof)


async def _timeout(link: Link, at: ActiveToxic, chunk: Chunk) -> AsyncIterator[Chunk]:
    """Swallow data. The close after ``timeout`` ms without data is done by ``Link._next``."""
    at.restart_timer()  # Go restarts its timer on every chunk received
    return
    yield chunk  # unreachable: makes this an async generator that yields nothing


async def _reset_peer(link: Link, at: ActiveToxic, chunk: Chunk) -> AsyncIterator[Chunk]:
    """On the first data (dropped), wait ``timeout`` ms, then reset the connection (RST).

    As in Go the wait cannot be interrupted: once triggered the reset happens.
    """
    await asyncio.sleep(max(at.toxic.attributes["timeout"], 0) / 1000)
    raise LinkClosed(at, reset=True)
    yield chunk  # unreachable: makes this an async generator


async def _slicer(link: Link, at: ActiveToxic, chunk: Chunk) -> AsyncIterator[Chunk]:
    """Cut a chunk into pieces of about ``average_size`` ± ``size_variation`` bytes, sleeping
    ``delay`` µs after each piece (asyncio sets TCP_NODELAY, so pieces leave as separate writes)."""
    attributes = at.toxic.attributes
    data = chunk.data
    delay = attributes["delay"] / 1_000_000
    for start, end in slice_bounds(len(data), attributes["average_size"], attributes["size_variation"],
                                   link.rng):
        yield Chunk(data[start:end], chunk.ts)
        if not await at.sleep_for(delay):
            if end < len(data):
                yield Chunk(data[end:], chunk.ts)
            return


async def _limit_data(link: Link, at: ActiveToxic, chunk: Chunk) -> AsyncIterator[Chunk]:
    """Let ``bytes`` bytes through on this link, then close it (a chunk is cut at the limit)."""
    limit = at.toxic.attributes["bytes"]
    remaining = max(limit - at.transmitted, 0)
    data = chunk.data[:remaining]
    if data:
        yield Chunk(data, chunk.ts)
        at.transmitted += len(data)
    if limit - at.transmitted <= 0:
        raise LinkClosed(at)


PIPES: dict[str, Pipe] = {
    "noop": _noop,
    "latency": _latency,
    "bandwidth": _bandwidth,
    "slow_close": _slow_close,
    "timeout": _timeout,
    "reset_peer": _reset_peer,
    "slicer": _slicer,
    "limit_data": _limit_data,
}


async def _slow_close_eof(link: Link, at: ActiveToxic) -> None:
    await at.sleep_for(at.toxic.attributes["delay"] / 1000)


async def _reset_peer_eof(link: Link, at: ActiveToxic) -> None:
    # Go's reset toxic wakes on a closed input as on data: the FIN becomes a RST after the timeout.
    await asyncio.sleep(max(at.toxic.attributes["timeout"], 0) / 1000)
    raise LinkClosed(at, reset=True)


#: What a toxic does when its input ends (EOF or an earlier toxic closed the link).
EOF_HOOKS: dict[str, Callable[[Link, ActiveToxic], Awaitable[None]]] = {
    "slow_close": _slow_close_eof,
    "reset_peer": _reset_peer_eof,
}


def slice_bounds(length: int, average: int, variation: int, rng: random.Random) -> list[tuple[int, int]]:
    """Split ``[0, length)`` the way Go's slicer does: halve (± variation) until a piece is within
    ``variation`` of ``average``. Pieces are never empty, so nonsense settings (average 0, variation
    above average) cannot recurse forever or panic as they can in Go."""
    pieces: list[tuple[int, int]] = []
    stack = [(0, length)]
    while stack:
        start, end = stack.pop()
        size = end - start
        if size <= 1 or size - average <= variation:
            pieces.append((start, end))
            continue
        mid = start + size // 2
        if variation > 0:
            mid += rng.randrange(2 * variation) - variation
        mid = min(max(mid, start + 1), end - 1)
        stack.append((mid, end))
        stack.append((start, mid))
    return pieces


# --- links and connections ---------------------------------------------------------------------


class Link:
    """One direction of one connection: source → toxic chain → destination."""

    def __init__(self, conn: Connection, direction: str, source: asyncio.StreamReader,
                 dest: asyncio.StreamWriter, rng: random.Random) -> None:
        self.conn = conn
        self.direction = direction
        self.source = source
        self.dest = dest
        self.rng = rng
        self.chain: list[ActiveToxic] = []
        self._items: deque[Chunk] = deque()
        self._eof = False
        self._signal = asyncio.Event()  # input arrived, input ended, or the chain changed
        self._space = asyncio.Event()  # the reader may read ahead again
        self._close_request: ActiveToxic | None = None

    # Chain changes, called by the proxy on the loop when the API changes toxics.

    def attach(self, toxic: Toxic) -> None:
        self.chain.append(ActiveToxic(toxic, self.rng))
        self._wake()

    def detach(self, toxic: Toxic) -> None:
        for index, at in enumerate(self.chain):
            if at.toxic is toxic:
                at.removed = True
                at.removed_index = index
                del self.chain[index]
                at.interrupt()
                if toxic.type == "timeout" and self._close_request is None:
                    self._close_request = at
                self._wake()
                return

    def update(self, toxic: Toxic) -> None:
        for at in self.chain:
            if at.toxic is toxic:
                at.applies = self.rng.random() < toxic.toxicity
                at.restart_timer()
                at.interrupt()
                self._wake()
                return

    def _wake(self) -> None:
        self._signal.set()
        self._space.set()

    def _read_ahead(self) -> int:
        if any(at.toxic.type == "latency" for at in self.chain):
            return LATENCY_READ_AHEAD
        return DEFAULT_READ_AHEAD

    async def run(self) -> None:
        reader = asyncio.create_task(self._read())
        try:
            await self._process()
        finally:
            reader.cancel()
            await asyncio.wait([reader])

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await self.source.read(READ_SIZE)
                if not data:
                    break
                while len(self._items) >= self._read_ahead():
                    self._space.clear()
                    await self._space.wait()
                self._items.append(Chunk(data, loop.time()))
                self._signal.set()
        except OSError:
            pass  # a reset or failed source ends the link like EOF, as in Go
        finally:
            self._eof = True
            self._signal.set()

    async def _next(self) -> Chunk | None:
        """The next chunk, None at EOF; raises LinkClosed when a timeout toxic or a removal says so."""
        while True:
            if self._close_request is not None:
                raise LinkClosed(self._close_request)
            if self._items:
                chunk = self._items.popleft()
                self._space.set()
                return chunk
            if self._eof:
                return None
            timer = self._earliest_timeout()
            self._signal.clear()
            if timer is None:
                await self._signal.wait()
                continue
            try:
                async with asyncio.timeout_at(timer.deadline):
                    await self._signal.wait()
            except TimeoutError:
                if not timer.removed and _now() >= timer.deadline:
                    raise LinkClosed(timer) from None

    def _earliest_timeout(self) -> ActiveToxic | None:
        timers = [at for at in self.chain
                  if at.toxic.type == "timeout" and at.applies and at.toxic.attributes["timeout"] > 0]
        return min(timers, key=lambda at: at.deadline, default=None)

    async def _process(self) -> None:
        after: ActiveToxic | None = None
        reset = False
        eof_hooks = True
        try:
            while (chunk := await self._next()) is not None:
                await self._through(chunk, list(self.chain), 0)
        except LinkClosed as closed:
            after, reset = closed.after, closed.reset
        except OSError:
            eof_hooks = False  # the destination failed: nothing left to close gracefully
        if not reset and eof_hooks:
            try:
                await self._eof_chain(after)
            except LinkClosed as closed:
                reset = closed.reset
        if reset:
            self.conn.reset()
        elif not self.dest.is_closing():
            self.dest.close()

    async def _through(self, chunk: Chunk, chain: list[ActiveToxic], index: int) -> None:
        while index < len(chain) and (chain[index].removed or not chain[index].applies):
            index += 1
        if index == len(chain):
            self.dest.write(chunk.data)
            await self.dest.drain()
            return
        at = chain[index]
        async with contextlib.aclosing(PIPES[at.toxic.type](self, at, chunk)) as pieces:
            async for piece in pieces:
                await self._through(piece, chain, index + 1)

    async def _eof_chain(self, after: ActiveToxic | None) -> None:
        """Let the toxics after the one that ended the link see the end (slow_close, reset_peer)."""
        chain = list(self.chain)
        if after is None:
            start = 0
        elif after.removed:
            start = after.removed_index
        else:
            start = next((i + 1 for i, at in enumerate(chain) if at is after), len(chain))
        for at in chain[start:]:
            hook = EOF_HOOKS.get(at.toxic.type)
            if hook is not None and at.applies and not at.removed:
                await hook(self, at)


class Connection:
    """A client connection and its upstream connection, joined by two links."""

    def __init__(self, proxy: TcpProxy, number: int,
                 client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        self.writers = (client[1], upstream[1])
        for writer in self.writers:  # Go's TCP connections have Nagle off; so do ours
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        base = f"{proxy.seed}/{proxy.model.name}/{number}"
        self.links = {
            UPSTREAM: Link(self, UPSTREAM, client[0], upstream[1], random.Random(f"{base}/{UPSTREAM}")),
            DOWNSTREAM: Link(self, DOWNSTREAM, upstream[0], client[1],
                             random.Random(f"{base}/{DOWNSTREAM}")),
        }
        for toxic in proxy.model.toxics:
            self.links[toxic.direction].attach(toxic)

    async def run(self) -> None:
        try:
            await asyncio.gather(*(link.run() for link in self.links.values()))
            # The link that finished last has just closed its destination; let it flush what it
            # still buffers before the sockets are released (bounded, a peer may never read).
            for writer in self.writers:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(5):
                        await writer.wait_closed()
        finally:
            self.abort()

    def reset(self) -> None:
        """Close both sockets with SO_LINGER 0, so both peers get a TCP RST (reset_peer).

        Go only sets the linger when a reset_peer toxic is on the link when the connection starts,
        so there a reset_peer added to a live connection ends it with FIN; here it is always RST.
        """
        for writer in self.writers:
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()

    def abort(self) -> None:
        """Close both sockets now (proxy disabled or deleted), as Go's ``conn.Close()``."""
        for writer in self.writers:
            writer.transport.abort()


# --- proxies -------------------------------------------------------------------------------------


def _errno_text(exc: OSError) -> str:
    text = os.strerror(exc.errno) if exc.errno else str(exc)
    return text[:1].lower() + text[1:]


async def _resolve(host: str, port: int) -> tuple[int, str]:
    """(family, ip) for a host, preferring IPv4 as Go does for names like ``localhost``."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return (socket.AF_INET6 if ip.version == 6 else socket.AF_INET), ip.compressed
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise ToxiproxyError(f"lookup {host}: no such host", 500) from None
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    family, _, _, _, sockaddr = infos[0]
    return family, str(sockaddr[0])


async def resolve_address(address: str) -> str:
    """Normalise a listen address as Go's ``ResolveTCPAddr(...).String()`` does (Differs check)."""
    host, port = split_host_port(address)
    if not host:
        return f":{port}"
    _, ip = await _resolve(host, port)
    return join_host_port(ip, port)


async def _listen_socket(address: str) -> socket.socket:
    """Bind a listening socket for ``address``; errors carry Go's wording and are 500s."""
    host, port = split_host_port(address)
    if host:
        family, ip = await _resolve(host, port)
        candidates = [(family, ip)]
    else:  # Go listens on every interface, dual-stack, and reports "[::]:port"
        candidates = [(socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")]
    error: OSError | None = None
    for family, ip in candidates:
        # proto must be IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted sockets whose
        # proto says TCP, and with Nagle on, small writes wait ~40 ms for a delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and not host:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind((ip, port))
            sock.listen(128)
            sock.setblocking(False)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
            if exc.errno != errno_module.EAFNOSUPPORT:
                break
    assert error is not None
    shown = join_host_port(candidates[0][1], port) if host else f":{port}"
    raise ToxiproxyError(f"listen tcp {shown}: bind: {_errno_text(error)}", 500)


def _bound_address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return join_host_port(host, port)


class TcpProxy:
    """One proxy's runtime: its listener, live connections and toxic chain changes."""

    def __init__(self, model: Proxy, seed: int) -> None:
        self.model = model
        self.seed = seed
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self._connections: set[Connection] = set()
        self._accepted = 0

    @property
    def connections(self) -> int:
        return len(self._connections)

    async def start(self) -> None:
        """Listen again on ``listen``; after a first start that is the bound port, so a proxy
        re-enabled after ``enabled: false`` comes back on the same port (as the real one does)."""
        if self.model.enabled:
            return
        sock = await _listen_socket(self.model.listen)
        try:
            self._server = await asyncio.start_server(self._on_client, sock=sock)
        except BaseException:
            sock.close()
            raise
        self.model.listen = _bound_address(sock)
        self.model.enabled = True

    async def stop(self) -> None:
        """Close the listener (new clients are refused) and every live connection."""
        if not self.model.enabled:
            return
        self.model.enabled = False
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for conn in list(self._connections):
            conn.abort()
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        if handlers:
            await asyncio.wait(handlers)
        if server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await server.wait_closed()

    async def update(self, listen: str, upstream: str, enabled: bool) -> None:
        """Go's ``Proxy.Update``: a new listen/upstream restarts the proxy (dropping connections)."""
        differs = await resolve_address(listen) != self.model.listen or upstream != self.model.upstream
        if differs:
            await self.stop()
            self.model.listen = listen
            self.model.upstream = upstream
        if enabled != self.model.enabled:
            if enabled:
                await self.start()
            else:
                await self.stop()

    def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Accept callback. The connection runs in a task this proxy owns, so ``stop()`` can cancel
        it (cancelling asyncio's own callback task makes Python 3.11 log a spurious traceback)."""
        task = asyncio.get_running_loop().create_task(
            self._serve_client(reader, writer), name=f"toxiproxy:{self.model.name}:connection")
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def _serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if not self.model.enabled:
                writer.transport.abort()
                return
            self._accepted += 1
            number = self._accepted
            try:
                host, port = split_host_port(self.model.upstream)
                upstream = await asyncio.open_connection(host, port)
            except (OSError, ToxiproxyError) as exc:
                log.info("toxiproxy %s: unable to open connection to upstream %s: %s",
                         self.model.name, self.model.upstream, exc)
                writer.transport.abort()
                return
            conn = Connection(self, number, (reader, writer), upstream)
            self._connections.add(conn)
            try:
                await conn.run()
            finally:
                self._connections.discard(conn)
        finally:
            writer.transport.abort()

    def add_toxic(self, toxic: Toxic) -> None:
        self.model.toxics.append(toxic)
        for conn in self._connections:
            conn.links[toxic.direction].attach(toxic)

    def update_toxic(self, toxic: Toxic) -> None:
        for conn in self._connections:
            conn.links[toxic.direction].update(toxic)

    def remove_toxic(self, toxic: Toxic) -> None:
        self.model.toxics.remove(toxic)
        for conn in self._connections:
            conn.links[toxic.direction].detach(toxic)

    def reset_toxics(self) -> None:
        for direction in STREAMS:
            for toxic in [t for t in self.model.toxics if t.direction == direction]:
                self.remove_toxic(toxic)


class ProxyCollection:
    """All proxies of one emulated server (Go's ``ProxyCollection``). Runs on one event loop.

    Mutations hold one lock, as the Go collection does, so two concurrent creates of the same name
    cannot both pass the duplicate check while the first is binding its port.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._proxies: dict[str, TcpProxy] = {}
        self._lock = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._proxies)

    def get(self, name: str) -> TcpProxy:
        proxy = self._proxies.get(name)
        if proxy is None:
            raise PROXY_NOT_FOUND.error()
        return proxy

    def all(self) -> list[TcpProxy]:
        """Proxies sorted by name (Go marshals its map with sorted keys)."""
        return [self._proxies[name] for name in sorted(self._proxies)]

    async def create(self, spec: ProxyInput) -> TcpProxy:
        async with self._lock:
            if spec.name in self._proxies:
                raise PROXY_ALREADY_EXISTS.error()
            proxy = TcpProxy(Proxy(spec.name, spec.listen, spec.upstream), self.seed)
            if spec.enabled:
                await proxy.start()
            self._proxies[spec.name] = proxy
            return proxy

    async def update(self, name: str, body: Any) -> TcpProxy:
        async with self._lock:
            proxy = self.get(name)
            listen, upstream, enabled = parse_proxy_update(body, proxy.model)
            await proxy.update(listen, upstream, enabled)
            return proxy

    async def delete(self, name: str) -> None:
        async with self._lock:
            proxy = self.get(name)
            await proxy.stop()
            del self._proxies[name]

    async def populate(self, specs: list[ProxyInput]) -> tuple[list[TcpProxy], ToxiproxyError | None]:
        """Create or replace each proxy in order; stop at the first error, reporting what was done.

        An existing proxy with the same (resolved) listen and upstream is kept as is, toxics and
        enabled state included; otherwise it is stopped and replaced by a fresh one.
        """
        done: list[TcpProxy] = []
        async with self._lock:
            for spec in specs:
                try:
                    existing = self._proxies.get(spec.name)
                    if existing is not None:
                        if (await resolve_address(spec.listen) == existing.model.listen
                                and spec.upstream == existing.model.upstream):
                            done.append(existing)
                            continue
                        await existing.stop()
                    proxy = TcpProxy(Proxy(spec.name, spec.listen, spec.upstream), self.seed)
                    if spec.enabled:
                        await proxy.start()
                except ToxiproxyError as exc:
                    return done, exc
                self._proxies[spec.name] = proxy
                done.append(proxy)
        return done, None

    async def reset(self) -> None:
        """``POST /reset``: enable every proxy and remove every toxic."""
        async with self._lock:
            for proxy in list(self._proxies.values()):
                await proxy.start()
                proxy.reset_toxics()

    async def clear(self) -> None:
        """Stop and forget every proxy (not in the HTTP API; for the harness between scenarios)."""
        async with self._lock:
            proxies = list(self._proxies.values())
            self._proxies.clear()
            for proxy in proxies:
                await proxy.stop()

    async def close(self) -> None:
        """Stop everything; safe to call twice (explicit stop, then the app's lifespan shutdown)."""
        await self.clear()

    def toxic(self, proxy_name: str, toxic_name: str) -> tuple[TcpProxy, Toxic]:
        proxy = self.get(proxy_name)
        toxic = proxy.model.toxic(toxic_name)
        if toxic is None:
            raise TOXIC_NOT_FOUND.error()
        return proxy, toxic

    def add_toxic(self, proxy_name: str, body: Any) -> Toxic:
        proxy = self.get(proxy_name)
        toxic = parse_toxic(body, (t.name for t in proxy.model.toxics))
        proxy.add_toxic(toxic)
        return toxic

    def update_toxic(self, proxy_name: str, toxic_name: str, body: Any) -> Toxic:
        proxy, toxic = self.toxic(proxy_name, toxic_name)
        toxic.apply_update(body)
        proxy.update_toxic(toxic)
        return toxic

    def remove_toxic(self, proxy_name: str, toxic_name: str) -> None:
        proxy, toxic = self.toxic(proxy_name, toxic_name)
        proxy.remove_toxic(toxic)


__all__ = ["DOWNSTREAM", "UPSTREAM", "ProxyCollection", "TcpProxy", "slice_bounds"]
