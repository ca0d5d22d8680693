"""Applications of an Environment: install from a Blueprint (R-PROV) and their cards (R-CARD)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from catalyst_sim.control.api.common import Body, dump, guarded, parse_body
from catalyst_sim.control.provisioning.service import InstallRequest

if TYPE_CHECKING:
    from catalyst_sim.control.plane import ControlPlane


class InstallBody(Body):
    name: str
    blueprint: str
    version: str | None = Field(default=None, description="Version range (^, ~, exact); default: latest")
    config: dict[str, Any] = {}
    bindings: dict[str, str] = Field(default={}, description="dependency alias -> existing Application")
    overlay: Literal["small", "medium", "large"] = "small"


SCHEMAS: tuple[type[BaseModel], ...] = (InstallBody,)


def routes(plane: ControlPlane) -> list[BaseRoute]:
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
        cards = await plane.application_cards(env.metadata.name, sorted(apps))  # from KV (R-PROJ-03)
        return JSONResponse({"items": [{**dump(app), "status": {"card": cards[name]}}
                                       for name, app in sorted(apps.items())]})

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

    return [
        Route("/api/v1/environments/{env}/applications", guarded(list_applications), methods=["GET"]),
        Route("/api/v1/environments/{env}/applications", guarded(install_application), methods=["POST"]),
    ]
