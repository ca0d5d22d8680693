"""The Catalyst REST API (R-SURF-04, R-PROV-04): the same operations the console performs.

Errors are JSON ``{"error": {"code", "message", "problems": [{field, object, source, message}]}}``
with 422 for invalid input, 404 for a missing object and 409 for a conflict; every problem names
the object and the field. The OpenAPI document is served at ``/openapi.json``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.schemas import SchemaGenerator

from catalyst_sim import __version__
from catalyst_sim.clients.gitea import GiteaError
from catalyst_sim.control.provisioning.service import InstallRequest
from catalyst_sim.model.base import CatalystError, Problem, problems_from_validation
from catalyst_sim.model.resources import Placement

if TYPE_CHECKING:
    from catalyst_sim.control.plane import ControlPlane

STATUS_BY_CODE = {"Invalid": 422, "NotFound": 404, "Conflict": 409, "Unauthorized": 401, "Forbidden": 403,
                  "Upstream": 502}


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrganizationRequest(Body):
    name: str
    contact: str
    plan: str = "standard"
    labels: dict[str, str] = {}


class EnvironmentRequest(Body):
    envType: str
    name: str | None = None
    placement: Placement | None = None


class InstallBody(Body):
    name: str
    blueprint: str
    version: str | None = Field(default=None, description="Version range (^, ~, exact); default: latest")
    config: dict[str, Any] = {}
    bindings: dict[str, str] = Field(default={}, description="dependency alias -> existing Application")
    overlay: Literal["small", "medium", "large"] = "small"


def error_response(error: CatalystError) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": error.code, "message": str(error), "problems": [p.as_dict() for p in error.problems]}},
        status_code=STATUS_BY_CODE.get(error.code, 422),
    )


async def parse_body(request: Request, model: type[Body], object: str) -> Any:
    raw = await request.body()
    try:
        data = json.loads(raw or b"{}")
    except json.JSONDecodeError as exc:
        raise CatalystError.single(f"request body is not valid JSON: {exc}", object=object) from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise CatalystError(problems_from_validation(exc, object=object)) from exc


Handler = Callable[[Request], Awaitable[Response]]


def guarded(handler: Handler) -> Handler:
    """Turn domain errors into Catalyst error responses; an upstream Gitea failure is a 502."""

    async def wrapper(request: Request) -> Response:
        try:
            return await handler(request)
        except CatalystError as exc:
            return error_response(exc)
        except GiteaError as exc:
            # A repo or Org that exists in Gitea but not in Catalyst's records is still a conflict.
            conflict = exc.status == 409 or "already exists" in str(exc)
            return error_response(CatalystError([Problem(f"the Sovereign's Gitea refused: {exc}")],
                                                code="Conflict" if conflict else "Upstream"))

    wrapper.__doc__ = handler.__doc__
    wrapper.__name__ = handler.__name__
    return wrapper


def dump(obj: BaseModel) -> dict[str, Any]:
    return obj.model_dump(mode="json", exclude_none=True)


def create_app(plane: ControlPlane) -> Starlette:
    async def healthz(request: Request) -> Response:
        """
        responses:
          200: {description: the control plane is serving}
        """
        return JSONResponse({"status": "ok", "version": __version__})

    async def list_organizations(request: Request) -> Response:
        """
        summary: List Organizations
        responses:
          200: {description: "{items: [Organization]}"}
        """
        return JSONResponse({"items": [dump(o) for o in plane.organizations.list()]})

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

    async def list_applications(request: Request) -> Response:
        """
        summary: List the Applications of an Environment with their cards (R-CARD)
        responses:
          200: {description: "{items: [Application]}"}
          404: {description: no such Environment}
        """
        env = plane.environments.get(request.path_params["env"])
        # Every App repo of the Org is realized in every Environment, on that Environment's branch
        # (R-APP-04, R-ENVC-02); the card is this Environment's.
        apps = {a.metadata.name: a for a in plane.provisioning.applications(env.spec.organization)}
        return JSONResponse({"items": [{**dump(app), "status": {"card": plane.application_card(
            env.metadata.name, name)}} for name, app in sorted(apps.items())]})

    async def install_application(request: Request) -> Response:
        """
        summary: Install an Application from a Blueprint (R-PROV-01); ?dryRun=true returns the plan only
        requestBody: {content: {application/json: {schema: {$ref: '#/components/schemas/InstallBody'}}}}
        responses:
          200: {description: "dry run: {plan}"}
          201: {description: "{plan, repositories}"}
          404: {description: no such Environment or Blueprint}
          409: {description: an Application of that name exists}
          422: {description: invalid name, config (every configSchema violation with its JSON pointer) or plan}
        """
        env = plane.environments.get(request.path_params["env"])
        body = await parse_body(request, InstallBody, "Application")
        install = InstallRequest(name=body.name, blueprint=body.blueprint, version=body.version, config=body.config,
                                 bindings=body.bindings, overlay=body.overlay)
        if request.query_params.get("dryRun", "").lower() in ("1", "true", "yes"):
            plan = await run_in_threadpool(plane.provisioning.plan, env, install)
            return JSONResponse({"plan": plan.as_dict()})
        plan = await run_in_threadpool(plane.provisioning.install, env, install, author="catalyst-api")
        repositories = [{"full_name": a.repository, "clone_url": f"{plane.gitea_url}/{a.repository}.git",
                         "branches": ["develop", "staging", "main"]} for a in plan.new_applications]
        return JSONResponse({"plan": plan.as_dict(), "repositories": repositories}, status_code=201)

    async def gitea_webhook(request: Request) -> Response:
        """
        summary: Gitea webhook receiver (push events of every Organization's repos, R-GIT-03)
        responses:
          204: {description: accepted}
          401: {description: bad signature}
        """
        body = await request.body()
        expected = hmac.new(plane.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("X-Gitea-Signature", "")):
            raise CatalystError.single("the webhook signature does not match", code="Unauthorized")
        if request.headers.get("X-Gitea-Event") == "push":
            payload = json.loads(body)
            owner, _, repo = payload["repository"]["full_name"].partition("/")
            ref = payload.get("ref", "")
            if ref.startswith("refs/heads/"):
                plane.controller.repository_pushed(owner, repo, ref.removeprefix("refs/heads/"))
        return Response(status_code=204)

    routes = [
        Route("/healthz", healthz),
        Route("/api/v1/hooks/gitea", guarded(gitea_webhook), methods=["POST"]),
        Route("/api/v1/organizations", guarded(list_organizations), methods=["GET"]),
        Route("/api/v1/organizations", guarded(create_organization), methods=["POST"]),
        Route("/api/v1/organizations/{org}", guarded(get_organization), methods=["GET"]),
        Route("/api/v1/organizations/{org}/environments", guarded(list_environments), methods=["GET"]),
        Route("/api/v1/organizations/{org}/environments", guarded(create_environment), methods=["POST"]),
        Route("/api/v1/environments/{env}", guarded(get_environment), methods=["GET"]),
        Route("/api/v1/environments/{env}/applications", guarded(list_applications), methods=["GET"]),
        Route("/api/v1/environments/{env}/applications", guarded(install_application), methods=["POST"]),
        Route("/api/v1/blueprints", guarded(list_blueprints), methods=["GET"]),
        Route("/api/v1/blueprints/{name}", guarded(get_blueprint), methods=["GET"]),
    ]
    schemas = SchemaGenerator({"openapi": "3.0.3", "info": {"title": "Catalyst API (catalyst-sim reference)",
                                                             "version": __version__}})
    components = {model.__name__: model.model_json_schema(ref_template="#/components/schemas/{model}")
                  for model in (OrganizationRequest, EnvironmentRequest, InstallBody)}

    async def openapi(request: Request) -> Response:
        document = schemas.get_schema(routes=app.routes)
        document["components"] = {"schemas": components}
        return JSONResponse(document)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await plane.start_controllers()
        try:
            yield
        finally:
            await plane.stop_controllers()

    app = Starlette(routes=[*routes, Route("/openapi.json", openapi, include_in_schema=False)], lifespan=lifespan)
    return app
