"""The Blueprint catalog (R-CAT, R-BP)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from catalyst_sim.control.api.common import dump, guarded

if TYPE_CHECKING:
    from catalyst_sim.control.plane import ControlPlane

SCHEMAS: tuple[type[BaseModel], ...] = ()


def routes(plane: ControlPlane) -> list[BaseRoute]:
    async def list_blueprints(request: Request) -> Response:
        """
        summary: List the catalog's Blueprints visible to the caller (R-CAT-01, R-BP-03)
        parameters:
          - {name: organization, in: query, schema: {type: string}}
        responses:
          200: {description: "{items: [Blueprint]}"}
        """
        organization = request.query_params.get("organization")
        return JSONResponse({"items": [dump(b) for b in plane.catalog.list(organization=organization)]})

    async def get_blueprint(request: Request) -> Response:
        """
        summary: Get a Blueprint (latest version, or ?version= range)
        responses:
          200: {description: the Blueprint}
          404: {description: no such Blueprint}
        """
        blueprint = plane.catalog.get(request.path_params["name"], request.query_params.get("version"))
        return JSONResponse(dump(blueprint))

    return [
        Route("/api/v1/blueprints", guarded(list_blueprints), methods=["GET"]),
        Route("/api/v1/blueprints/{name}", guarded(get_blueprint), methods=["GET"]),

    ]
