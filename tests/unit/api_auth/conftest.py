"""A Starlette app shaped like the Catalyst API's routes behind :class:`CatalystAuth`, on a virtual clock.

Organizations ``acme`` and ``bankdhofar``; every handler echoes who called it, so a test sees both the
refusal and, when let through, the Principal the handler got.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from catalyst_sim.clock import VirtualClock
from catalyst_sim.control.api.auth import CatalystAuth, principal_of
from catalyst_sim.control.identity import Authenticator, IdentityTopology
from catalyst_sim.serving import ServerThread

ORGS = ("acme", "bankdhofar")


async def whoami(request: Request) -> Response:
    principal = principal_of(request)
    return JSONResponse({"user": principal.user, "org": principal.org, "params": dict(request.path_params)})


async def public(request: Request) -> Response:
    return JSONResponse({"public": True, "principal": "principal" in request.scope.get("state", {})})


def make_app(authenticator: Authenticator) -> Starlette:
    routes = [
        Route("/healthz", public),
        Route("/openapi.json", public),
        Route("/api/v1/hooks/gitea", public, methods=["POST"]),
        Route("/api/v1/organizations", whoami, methods=["GET", "POST"]),
        Route("/api/v1/organizations/{org}", whoami, methods=["GET"]),
        Route("/api/v1/organizations/{org}/environments", whoami, methods=["GET", "POST"]),
        Route("/api/v1/environments/{env}", whoami, methods=["GET"]),
        Route("/api/v1/environments/{env}/applications", whoami, methods=["GET", "POST"]),
        # A route nobody wrote a rule for: protected by its {env} parameter all the same.
        Route("/api/v1/environments/{env}/events", whoami, methods=["GET"]),
        Route("/api/v1/blueprints", whoami, methods=["GET"]),
        Route("/api/v1/policies/reload", whoami, methods=["POST"]),
    ]
    return Starlette(routes=routes, middleware=[Middleware(CatalystAuth, authenticator=authenticator)])


# Module-scoped: RSA keys are costly to make, and every test logs in afresh at the clock's current instant.
@pytest.fixture(scope="module")
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture(scope="module", params=["per-organization", "shared-sovereign"])
def topology(request: pytest.FixtureRequest, clock: VirtualClock) -> IdentityTopology:
    topology = IdentityTopology("omantel", request.param, clock, "https://keycloak.omantel.example")
    for org in ORGS:
        topology.add_organization(org)
    return topology


@pytest.fixture(scope="module")
def client(topology: IdentityTopology, clock: VirtualClock) -> Iterator[httpx.Client]:
    """The app served over real HTTP on a free port, and a plain client of it."""
    server = ServerThread(make_app(Authenticator(topology, clock)), "api-auth-test").start()
    try:
        with httpx.Client(base_url=server.url) as http:
            yield http
    finally:
        server.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
