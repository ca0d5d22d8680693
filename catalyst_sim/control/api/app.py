"""The Catalyst REST API (R-SURF-04, R-PROV-04): the same operations the console performs.

The API is composed of areas, one module each under ``control/api``; every area exposes
``routes(plane)`` and the request-body models of its OpenAPI components (``SCHEMAS``). Errors share
one shape (:mod:`.common`). The OpenAPI document is served at ``/openapi.json``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from types import ModuleType
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.schemas import SchemaGenerator

from catalyst_sim import __version__
from catalyst_sim.control.api import (
    applications,
    catalog,
    hooks,
    organizations,
    promotions,
    secrets,
    sovereignty,
    state,
)
from catalyst_sim.control.api.auth import CatalystAuth

if TYPE_CHECKING:
    from catalyst_sim.control.plane import ControlPlane

AREAS: tuple[ModuleType, ...] = (organizations, catalog, applications, promotions, secrets, hooks, state,
                                 sovereignty)


def create_app(plane: ControlPlane) -> Starlette:
    async def healthz(request: Request) -> Response:
        """
        responses:
          200: {description: the control plane is serving}
        """
        return JSONResponse({"status": "ok", "version": __version__})

    routes = [Route("/healthz", healthz)]
    for area in AREAS:
        routes.extend(area.routes(plane))
    schemas = SchemaGenerator({"openapi": "3.0.3", "info": {"title": "Catalyst API (catalyst-sim reference)",
                                                             "version": __version__}})
    components = {model.__name__: model.model_json_schema(ref_template="#/components/schemas/{model}")
                  for area in AREAS for model in area.SCHEMAS}

    async def openapi(request: Request) -> Response:
        document = schemas.get_schema(routes=app.routes)
        document["components"] = {"schemas": components, "securitySchemes": {
            "keycloak": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                         "description": "a Keycloak access token of the caller's realm (R-ID-02)"}}}
        document["security"] = [{"keycloak": []}]
        return JSONResponse(document)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await plane.start_controllers()
        try:
            yield
        finally:
            await plane.stop_controllers()

    # Every call but the probes, /openapi.json and the signed webhook needs a valid token (control/api/auth.py).
    app = Starlette(routes=[*routes, Route("/openapi.json", openapi, include_in_schema=False)], lifespan=lifespan,
                    middleware=[Middleware(CatalystAuth, authenticator=plane.authenticator)])
    return app
