"""The Toxiproxy HTTP API (Starlette) over a ``ProxyCollection``: paths, methods, JSON and codes.

This layer only maps HTTP to the collection; what a proxy or toxic is lives in ``state.py`` and
what it does in ``proxy.py``. The wire details follow the real Go server, because clients (and
tests written against the real server) look at them:

* success bodies are compact JSON; ``POST /proxies`` and ``POST /populate`` answer 201, toxic
  creation answers 200, ``DELETE`` and ``POST /reset`` answer 204 with no body;
* errors are ``{"error": msg, "status": code}`` followed by a newline with ``text/plain`` content
  type, because the real server writes them with Go's ``http.Error``;
* ``/populate`` answers ``{"proxies": [...]}`` (``null`` when empty) and, on failure, the error
  fields in the same object next to the proxies created before the failing one;
* updates accept ``POST`` (deprecated upstream) and ``PATCH``; unknown paths answer Go's
  ``404 page not found``, a wrong method a bare 405; browsers (``User-Agent: Mozilla/...``) get 403;
  every response carries ``X-Toxiproxy-Request-Id``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .proxy import ProxyCollection, TcpProxy
from .state import (
    BAD_REQUEST_BODY,
    TOXIPROXY_VERSION,
    ToxiproxyError,
    parse_populate,
    parse_proxy_create,
)

JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _json(value: Any, status: int = 200) -> Response:
    return Response(_dumps(value), status_code=status, media_type=JSON)


def _error(exc: ToxiproxyError) -> Response:
    return Response(_dumps(exc.to_json()) + "\n", status_code=exc.status, media_type=_TEXT,
                    headers={"X-Content-Type-Options": "nosniff"})


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")


async def _body(request: Request) -> Any:
    """Decode the first JSON value of the body, as Go's ``json.Decoder`` does (trailing data is
    ignored, an empty body is ``EOF``, NaN/Infinity are not JSON)."""
    text = (await request.body()).decode("utf-8", errors="replace").lstrip(" \t\r\n")
    if not text:
        raise BAD_REQUEST_BODY.error("EOF")
    decoder = json.JSONDecoder(parse_constant=_reject_constant)
    try:
        value, _ = decoder.raw_decode(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text):
            raise BAD_REQUEST_BODY.error("unexpected EOF") from None
        raise BAD_REQUEST_BODY.error(f"invalid character {text[exc.pos]!r} ({exc.msg.lower()})") from None
    except ValueError as exc:
        raise BAD_REQUEST_BODY.error(str(exc)) from None
    return value


Handler = Callable[[Request], Awaitable[Response]]


def _api(handler: Handler) -> Handler:
    """Turn a ToxiproxyError raised anywhere below into the real server's error response."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except ToxiproxyError as exc:
            return _error(exc)

    wrapped.__name__ = handler.__name__
    return wrapped


def _proxy_json(proxy: TcpProxy) -> dict[str, Any]:
    return proxy.model.to_json()


class ToxiproxyHeaders:
    """Pure-ASGI middleware for what gorilla/mux middlewares do before any handler: the request id
    header, and refusing browsers (the real server blocks them against CSRF from web pages)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._ids = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = f"cs{next(self._ids):018d}".encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-toxiproxy-request-id", request_id)]
            await send(message)

        user_agent = dict(scope.get("headers", [])).get(b"user-agent", b"")
        if user_agent.startswith(b"Mozilla/"):
            response = Response("User agent not allowed\n", status_code=403, media_type=_TEXT,
                                headers={"X-Content-Type-Options": "nosniff"})
            await response(scope, receive, send_with_id)
            return
        await self.app(scope, receive, send_with_id)


def create_app(collection: ProxyCollection) -> Starlette:
    """The ASGI app serving ``collection``; its lifespan shutdown stops every proxy."""

    async def version(request: Request) -> Response:
        body = f'{{"version": "{TOXIPROXY_VERSION}"}}\n'
        return Response(body, media_type="application/json;charset=utf-8")

    @_api
    async def reset(request: Request) -> Response:
        await collection.reset()
        return Response(status_code=204)

    @_api
    async def proxies(request: Request) -> Response:
        if request.method == "GET":
            return _json({p.model.name: _proxy_json(p) for p in collection.all()})
        proxy = await collection.create(parse_proxy_create(await _body(request)))
        return _json(_proxy_json(proxy), 201)

    @_api
    async def populate(request: Request) -> Response:
        try:
            specs = parse_populate(await _body(request))
        except ToxiproxyError as exc:
            done: list[TcpProxy] = []
            error: ToxiproxyError | None = exc
        else:
            done, error = await collection.populate(specs)
        body: dict[str, Any] = error.to_json() if error is not None else {}
        body["proxies"] = [_proxy_json(p) for p in done] or None
        return _json(body, error.status if error is not None else 201)

    @_api
    async def proxy(request: Request) -> Response:
        name = request.path_params["proxy"]
        if request.method == "GET":
            return _json(_proxy_json(collection.get(name)))
        if request.method == "DELETE":
            await collection.delete(name)
            return Response(status_code=204)
        collection.get(name)  # 404 before the body is looked at, as in Go
        return _json(_proxy_json(await collection.update(name, await _body(request))))

    @_api
    async def toxics(request: Request) -> Response:
        proxy = collection.get(request.path_params["proxy"])
        if request.method == "GET":
            return _json([t.to_json() for t in proxy.model.ordered_toxics()])
        toxic = collection.add_toxic(proxy.model.name, await _body(request))
        return _json(toxic.to_json())

    @_api
    async def toxic(request: Request) -> Response:
        proxy_name, toxic_name = request.path_params["proxy"], request.path_params["toxic"]
        if request.method == "GET":
            return _json(collection.toxic(proxy_name, toxic_name)[1].to_json())
        if request.method == "DELETE":
            collection.remove_toxic(proxy_name, toxic_name)
            return Response(status_code=204)
        collection.toxic(proxy_name, toxic_name)  # 404s first
        return _json(collection.update_toxic(proxy_name, toxic_name, await _body(request)).to_json())

    async def not_found(request: Request, exc: Exception) -> Response:
        return Response("404 page not found\n", status_code=404, media_type=_TEXT,
                        headers={"X-Content-Type-Options": "nosniff"})

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        return Response(status_code=405)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await collection.close()

    update = ["POST", "PATCH"]
    app = Starlette(
        routes=[
            Route("/version", version, methods=["GET"]),
            Route("/reset", reset, methods=["POST"]),
            Route("/proxies", proxies, methods=["GET", "POST"]),
            Route("/populate", populate, methods=["POST"]),
            Route("/proxies/{proxy}", proxy, methods=["GET", "DELETE", *update]),
            Route("/proxies/{proxy}/toxics", toxics, methods=["GET", "POST"]),
            Route("/proxies/{proxy}/toxics/{toxic}", toxic, methods=["GET", "DELETE", *update]),
        ],
        middleware=[Middleware(ToxiproxyHeaders)],
        exception_handlers={404: not_found, 405: method_not_allowed},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # gorilla/mux does not redirect "/proxies/" either
    return app


__all__ = ["ToxiproxyHeaders", "create_app"]
