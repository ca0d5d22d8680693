"""Organizations and their Environments (R-ORG, R-ENV)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from catalyst_sim.control.api.auth import principal_of, visible_organizations
from catalyst_sim.control.api.common import Body, dump, guarded, parse_body
from catalyst_sim.model.resources import Placement

if TYPE_CHECKING:
    from catalyst_sim.control.plane import ControlPlane


class OrganizationRequest(Body):
    name: str
    contact: str
    plan: str = "standard"
    labels: dict[str, str] = {}


class EnvironmentRequest(Body):
    envType: str
    name: str | None = None
    placement: Placement | None = None


SCHEMAS: tuple[type[BaseModel], ...] = (OrganizationRequest, EnvironmentRequest)


def routes(plane: ControlPlane) -> list[BaseRoute]:
    async def list_organizations(request: Request) -> Response:
        """
        summary: List Organizations
        responses:
          200: {description: "{items: [Organization]}"}
        """
        organizations = {o.metadata.name: o for o in plane.organizations.list()}
        visible = visible_organizations(principal_of(request), organizations)  # R-PROJ-04
        return JSONResponse({"items": [dump(organizations[name]) for name in visible]})

    async def create_organization(request: Request) -> Response:
        """
        summary: Onboard an Organization (R-ORG-01..03)
        requestBody: {content: {application/json: {schema: {$ref: '#/components/schemas/OrganizationRequest'}}}}
        responses:
          201: {description: the Organization}
          409: {description: it already exists}
          422: {description: invalid name or body, each problem naming its field}
        """
        body = await parse_body(request, OrganizationRequest, "Organization")
        org = await run_in_threadpool(plane.organizations.create, body.name, body.contact, body.plan, body.labels)
        return JSONResponse(dump(org), status_code=201)

    async def get_organization(request: Request) -> Response:
        """
        summary: Get an Organization
        responses:
          200: {description: the Organization}
          404: {description: no such Organization}
        """
        return JSONResponse(dump(plane.organizations.get(request.path_params["org"])))

    async def list_environments(request: Request) -> Response:
        """
        summary: List an Organization's Environments
        responses:
          200: {description: "{items: [Environment]}"}
          404: {description: no such Organization}
        """
        org = plane.organizations.get(request.path_params["org"]).metadata.name
        return JSONResponse({"items": [dump(e) for e in plane.environments.list(org)]})

    async def create_environment(request: Request) -> Response:
        """
        summary: Create an Environment {org}-{envType} (R-ENV-01, R-NAME-07)
        requestBody: {content: {application/json: {schema: {$ref: '#/components/schemas/EnvironmentRequest'}}}}
        responses:
          201: {description: the Environment}
          404: {description: no such Organization}
          409: {description: the Organization already has an Environment of that envType}
          422: {description: invalid envType or name}
        """
        body = await parse_body(request, EnvironmentRequest, "Environment")
        env = await run_in_threadpool(plane.environments.create, request.path_params["org"], body.envType,
                                      name=body.name, placement=body.placement)
        return JSONResponse(dump(env), status_code=201)

    async def get_environment(request: Request) -> Response:
        """
        summary: Get an Environment
        responses:
          200: {description: the Environment}
          404: {description: no such Environment}
        """
        environment = plane.environments.get(request.path_params["env"])
        return JSONResponse({**dump(environment), "status": plane.environment_status(environment.metadata.name)})

    return [
        Route("/api/v1/organizations", guarded(list_organizations), methods=["GET"]),
        Route("/api/v1/organizations", guarded(create_organization), methods=["POST"]),
        Route("/api/v1/organizations/{org}", guarded(get_organization), methods=["GET"]),
        Route("/api/v1/organizations/{org}/environments", guarded(list_environments), methods=["GET"]),
        Route("/api/v1/organizations/{org}/environments", guarded(create_environment), methods=["POST"]),
        Route("/api/v1/environments/{env}", guarded(get_environment), methods=["GET"]),
    ]
