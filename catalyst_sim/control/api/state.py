"""Read side of the Catalyst API: snapshots and SSE streams served from the KV read model only.

Every state a console shows comes from the Environment's KV bucket ``ws-<env>-state`` that the
projector folds (ARCHITECTURE §5, R-PROJ-03, R-PROJ-05): never from the clusters or Git. So the
snapshot API and every SSE client read the same records and cannot disagree. Which Applications
exist is Catalyst's own record (the Application CRs); *how they are* is the KV's.

* ``GET /api/v1/environments/{env}/summary`` — the Environment record: card state per App, counts.
* ``GET /api/v1/environments/{env}/applications/{app}`` — one App with its card and what it was
  derived from (revision, ready/desired pods, reason).
* ``GET /api/v1/environments/{env}/applications/{app}/history`` — its card transitions.
* ``GET /api/v1/environments/{env}/parked`` — events the projector could not fold, with reasons.
* ``GET /api/v1/environments/{env}/events`` — SSE: every change of the read model, ``id:`` = the KV
  revision. A client reconnecting with ``Last-Event-ID`` gets the current value of every record
  changed after that revision, then live changes; an ``event: synced`` marks the end of catch-up.

Reads first wait (briefly, R-PROJ-03's 2 s) until the events already submitted for the Environment
are folded, so a client reading right after its own write sees it. A slow SSE client never makes
the server buffer without bound: each stream holds at most ``SSE_BUFFER`` changes; a client that
falls that far behind is sent nothing more and its stream ends, and it resumes with Last-Event-ID.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import nats.errors
import nats.js.errors
from pydantic import BaseModel
from sse_starlette.sse import EventSourceResponse, SendTimeoutError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from catalyst_sim.control.events.wiring import EventSpine
from catalyst_sim.model.base import CatalystError, NotFoundError
from catalyst_sim.model.naming import kv_key

if TYPE_CHECKING:
    from catalyst_sim.control.plane import ControlPlane

__all__ = ["SCHEMAS", "SSE_BUFFER", "ReadSide", "cards", "routes", "routes_for"]

SCHEMAS: tuple[type[BaseModel], ...] = ()

SSE_BUFFER = 1024  # changes buffered per SSE client at most
SSE_SEND_TIMEOUT = 30.0  # a client that accepts nothing for this long is dropped
SSE_PING = 2.0  # also lets a client notice quickly that it closed its side
CONSISTENCY_WAIT = 2.0  # R-PROJ-03: SSE delivery end to end SHOULD take < 2 s
WAITING_CARD = {"state": "Installing", "glyph": "◐", "text": "waiting for its first reconcile",
                "label": "◐ Installing"}


@dataclass
class ReadSide:
    """What the read routes need: the spine (KV) and Catalyst's own records of what exists."""

    spine: EventSpine
    organization_of: Callable[[str], str]  # Environment -> its Organization; NotFoundError if none
    applications: Callable[[str], list[str]]  # Organization -> App names
    stats: dict[str, int] = field(default_factory=lambda: {"streams_open": 0, "streams_total": 0, "lagging_closed": 0,
                                                           "max_buffered": 0, "sent": 0})

    def application(self, environment: str, app: str) -> None:
        organization = self.organization_of(environment)
        if app not in self.applications(organization):
            raise NotFoundError(f"Application {app!r} does not exist in Organization {organization!r}",
                                object=f"Application/{app}")


async def records(spine: EventSpine, environment: str, keys: list[str]) -> dict[str, dict[str, Any] | None]:
    """Current KV records of ``keys`` (None where absent), after the Environment has caught up."""
    await spine.caught_up(environment, CONSISTENCY_WAIT)
    kv = await spine.key_value(environment)
    if kv is None:
        return dict.fromkeys(keys)

    async def one(key: str) -> dict[str, Any] | None:
        try:
            entry = await kv.get(key)
        except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
            return None
        return json.loads(entry.value) if entry.value else None

    values = await asyncio.gather(*(one(k) for k in keys))
    return dict(zip(keys, values, strict=True))


async def cards(spine: EventSpine, environment: str, apps: list[str]) -> dict[str, dict[str, Any]]:
    """The card of each App in the Environment, from KV (R-CARD-01..03 as the projector derived it)."""
    found = await records(spine, environment, [kv_key("Application", a) for a in apps])
    out = {}
    for app in apps:
        rec = found[kv_key("Application", app)]
        card = dict(rec["card"]) if rec and rec.get("card") else dict(WAITING_CARD)
        if rec:
            card["vclusters"] = {vc: o.get("ready") for vc, o in (rec.get("vclusters") or {}).items()}
        out[app] = card
    return out


def _guarded(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    async def wrapper(request: Request) -> Response:
        try:
            return await handler(request)
        except CatalystError as exc:
            status = {"NotFound": 404, "Conflict": 409}.get(exc.code, 422)
            return JSONResponse({"error": {"code": exc.code, "message": str(exc),
                                           "problems": [p.as_dict() for p in exc.problems]}}, status_code=status)

    wrapper.__doc__ = handler.__doc__
    wrapper.__name__ = handler.__name__
    return wrapper


def routes(plane: ControlPlane) -> list[Route]:
    if plane.events is None:
        return []  # no event spine, no read model to serve
    return routes_for(ReadSide(spine=plane.events,
                               organization_of=lambda env: plane.environments.get(env).spec.organization,
                               applications=plane.application_names))


def routes_for(side: ReadSide) -> list[Route]:
    spine = side.spine

    async def summary(request: Request) -> Response:
        """
        summary: The Environment's read model summary (card state per Application, counts, parked events)
        responses:
          200: {description: "the Environment/<env> record of ws-<env>-state (R-NAME-17)"}
          404: {description: no such Environment}
        """
        env = request.path_params["env"]
        side.organization_of(env)
        key = kv_key("Environment", env)
        record = (await records(spine, env, [key]))[key]
        return JSONResponse(record or {"kind": "Environment", "name": env, "applications": {}, "counts": {},
                                       "parked": 0, "seq": 0})

    async def application(request: Request) -> Response:
        """
        summary: One Application's card and what it is derived from (R-CARD-02), from KV
        responses:
          200: {description: "{name, environment, card, record}"}
          404: {description: no such Environment or Application}
        """
        env, app = request.path_params["env"], request.path_params["app"]
        side.application(env, app)
        key = kv_key("Application", app)
        record = (await records(spine, env, [key]))[key]
        card = (await cards(spine, env, [app]))[app]
        return JSONResponse({"name": app, "environment": env, "card": card, "record": record})

    async def history(request: Request) -> Response:
        """
        summary: An Application's card transitions in the Environment, oldest first (from KV)
        responses:
          200: {description: "{items: [{seq, time, event, state, text, revision, reason}]}"}
          404: {description: no such Environment or Application}
        """
        env, app = request.path_params["env"], request.path_params["app"]
        side.application(env, app)
        key = kv_key("ApplicationHistory", app)
        record = (await records(spine, env, [key]))[key]
        return JSONResponse({"items": record["entries"] if record else []})

    async def parked(request: Request) -> Response:
        """
        summary: Events of the Environment the projector parked instead of folding, with the reason
        responses:
          200: {description: "{items: [{seq, subject, reason, id, time, payload}]}"}
          404: {description: no such Environment}
        """
        env = request.path_params["env"]
        side.organization_of(env)
        await spine.caught_up(env, CONSISTENCY_WAIT)
        items = [change.value async for change in _kv_changes(spine, env, 0, follow=False)
                 if change.value and change.value.get("kind") == "Parked"]
        return JSONResponse({"items": sorted(items, key=lambda r: r["seq"])})

    async def events(request: Request) -> Response:
        """
        summary: "SSE: every change of the Environment's read model; id = KV revision, resumable with
          Last-Event-ID (R-PROJ-03)"
        responses:
          200: {description: "text/event-stream of {key, revision, op, value}"}
          404: {description: no such Environment}
          422: {description: Last-Event-ID is not a revision number}
        """
        env = request.path_params["env"]
        side.organization_of(env)
        raw = request.headers.get("last-event-id") or request.query_params.get("since") or "0"
        if not raw.isdigit():
            raise CatalystError.single(f"Last-Event-ID must be a KV revision number, not {raw!r}",
                                       field="Last-Event-ID", object=f"Environment/{env}")
        await spine.caught_up(env, CONSISTENCY_WAIT)
        return _Stream(_stream(side, env, int(raw)), ping=SSE_PING, send_timeout=SSE_SEND_TIMEOUT)

    return [
        Route("/api/v1/environments/{env}/summary", _guarded(summary), methods=["GET"]),
        Route("/api/v1/environments/{env}/applications/{app}", _guarded(application), methods=["GET"]),
        Route("/api/v1/environments/{env}/applications/{app}/history", _guarded(history), methods=["GET"]),
        Route("/api/v1/environments/{env}/parked", _guarded(parked), methods=["GET"]),
        Route("/api/v1/environments/{env}/events", _guarded(events), methods=["GET"]),
    ]


class _Stream(EventSourceResponse):
    """An SSE response whose client stopped accepting bytes ends quietly (it resumes with Last-Event-ID)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        except* SendTimeoutError:
            pass


@dataclass(frozen=True)
class _Change:
    key: str
    value: dict[str, Any] | None
    revision: int
    op: str


async def _kv_changes(spine: EventSpine, environment: str, since: int, *, follow: bool) -> AsyncIterator[_Change]:
    """The latest value of every key changed after ``since``, then (``follow``) live changes.

    ``None`` separates catch-up from live changes when following.
    """
    kv = await spine.key_value(environment)
    if kv is None:
        return
    watcher = await kv.watchall()
    try:
        while True:
            try:
                entry = await watcher.updates(timeout=3600)
            except nats.errors.TimeoutError:
                continue
            if entry is None:
                if not follow:
                    return
                yield None  # type: ignore[misc]  # the end of catch-up, for the stream to announce
                continue
            if entry.revision <= since:
                continue
            op = entry.operation or "PUT"
            value = json.loads(entry.value) if op == "PUT" and entry.value else None
            yield _Change(entry.key, value, entry.revision, op)
    finally:
        with contextlib.suppress(Exception):
            await watcher.stop()


async def _stream(side: ReadSide, environment: str, since: int) -> AsyncIterator[dict[str, Any]]:
    """One SSE client: a pump moves KV changes into a bounded buffer the response drains.

    The pump never waits for the client, so NATS delivery never backs up behind a slow reader; when
    the buffer is full the pump stops, drops what it holds and ends the stream (``lagging``).
    """
    buffer: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=SSE_BUFFER)
    stats = side.stats
    lagging = asyncio.Event()

    async def pump() -> None:
        async for change in _kv_changes(side.spine, environment, since, follow=True):
            item = ({"event": "synced", "data": json.dumps({"environment": environment})} if change is None else
                    {"id": str(change.revision), "event": change.key.partition("/")[0],
                     "data": json.dumps({"key": change.key, "revision": change.revision, "op": change.op,
                                         "value": change.value}, sort_keys=True, separators=(",", ":"))})
            try:
                buffer.put_nowait(item)
            except asyncio.QueueFull:
                lagging.set()
                stats["lagging_closed"] += 1
                while not buffer.empty():
                    buffer.get_nowait()  # free the memory now, not when the client reads again
                buffer.put_nowait(None)
                return
            stats["max_buffered"] = max(stats["max_buffered"], buffer.qsize())

    task = asyncio.ensure_future(pump())
    stats["streams_open"] += 1
    stats["streams_total"] += 1
    try:
        while True:
            item = await buffer.get()
            if item is None:
                if lagging.is_set():
                    yield {"event": "lagging", "data": json.dumps({"reason": f"more than {SSE_BUFFER} changes "
                                                                   "behind; reconnect with Last-Event-ID"})}
                return
            stats["sent"] += 1
            yield item
    finally:
        stats["streams_open"] -= 1
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
