"""Promotion by pull request under EnvironmentPolicy (R-PROMO, R-EP)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from catalyst_sim.control.api.auth import principal_of
from catalyst_sim.control.api.common import Body, guarded, parse_body
from catalyst_sim.model import naming
from catalyst_sim.model.base import NotFoundError

if TYPE_CHECKING:
    from catalyst_sim.control.plane import ControlPlane


class PromotionBody(Body):
    to: str = Field(description="the destination Environment, e.g. acme-prod for a promotion from acme-stg")


# Until Catalyst's identity service exists, the caller names themself in this header; the name is the
# promotion's author for the gates (R-PROMO-03) and the audit trail.
USER_HEADER = "X-Catalyst-User"


SCHEMAS: tuple[type[BaseModel], ...] = (PromotionBody,)


def routes(plane: ControlPlane) -> list[BaseRoute]:
    def application_of(env: str, app: str) -> tuple[str, str]:
        """(organization, app) for an App of an Environment's Organization; 404 naming what is missing."""
        organization = plane.environments.get(env).spec.organization
        if app not in plane.application_names(organization):
            raise NotFoundError(f"Application {app!r} does not exist in Organization {organization!r}",
                                object=f"Application/{app}")
        return organization, app

    async def create_promotion(request: Request) -> Response:
        """
        summary: Promote an Application to the next Environment by a pull request (R-PROMO-01, R-PROMO-02)
        description: >-
          Opens a pull request from this Environment's branch to the destination's in the App repo,
          gated by the destination's EnvironmentPolicy; Catalyst merges it once every blocking gate
          passes. The author is the caller: the subject of the access token (R-PROMO-03 counts on it).
        requestBody: {content: {application/json: {schema: {$ref: '#/components/schemas/PromotionBody'}}}}
        responses:
          201: {description: "the promotion: pull request, author, gate verdicts with reasons"}
          401: {description: no valid access token}
          403: {description: the token may not write this Environment}
          404: {description: no such Environment or Application}
          409: {description: "the destination's policy is invalid (its problems listed), or a promotion is open"}
          422: {description: "not the next Environment of the promotion chain (D-14), or nothing to promote"}
        """
        env, app = request.path_params["env"], request.path_params["app"]
        body = await parse_body(request, PromotionBody, "Promotion")
        promotion, evaluation = await run_in_threadpool(
            plane.promotion_service.open, env, app, body.to, author=principal_of(request).user)
        plane.promotions.promotion_opened(promotion.key)
        await run_in_threadpool(plane.promotion_opened, promotion.organization, promotion.application,
                                promotion.number, promotion.head_branch, promotion.base_branch)
        return JSONResponse(promotion.as_dict(evaluation), status_code=201)

    async def list_promotions(request: Request) -> Response:
        """
        summary: The promotions of an Application from or into an Environment, with current gate verdicts
        responses:
          200: {description: "{items: [Promotion]}; open ones are evaluated now, merged ones keep their verdicts"}
          404: {description: no such Environment or Application}
        """
        env = request.path_params["env"]
        organization, app = application_of(env, request.path_params["app"])
        found = plane.promotion_service.promotions(organization=organization, app=app, environment=env)
        items = [await run_in_threadpool(plane.promotion_service.view, p) for p in found]
        return JSONResponse({"items": items})

    async def get_promotion(request: Request) -> Response:
        """
        summary: One promotion by its pull request number, with current gate verdicts
        responses:
          200: {description: the Promotion}
          404: {description: no such promotion}
        """
        env, number = request.path_params["env"], request.path_params["number"]
        organization, app = application_of(env, request.path_params["app"])
        promotion = plane.promotion_service.find((organization, app, number))
        if promotion is None or env not in (promotion.source, promotion.destination):
            raise NotFoundError(f"no promotion #{number} of {organization}/{app} from or into {env}",
                                object=f"Promotion/{organization}/{app}#{number}")
        return JSONResponse(await run_in_threadpool(plane.promotion_service.view, promotion))

    async def list_policies(request: Request) -> Response:
        """
        summary: Every EnvironmentPolicy of the Sovereign with its status and problems (R-EP-01, R-EP-02)
        responses:
          200: {description: "{items: [{file, name, valid, environments, problems}]}"}
        """
        policies = await run_in_threadpool(plane.promotion_service.policies)
        principal = principal_of(request)
        # Not a sovereign-admin: only the policies of the caller's own Environments (R-PROJ-04).
        mine = [s for s in policies.statuses if principal.sovereign_admin or any(
            naming.is_valid_environment_name(e) and naming.parse_environment_name(e).organization == principal.org
            for e in s.environments)]
        return JSONResponse({"items": [status.as_dict() for status in mine]})

    return [
        Route("/api/v1/environments/{env}/applications/{app}/promotions", guarded(list_promotions), methods=["GET"]),
        Route("/api/v1/environments/{env}/applications/{app}/promotions", guarded(create_promotion),
              methods=["POST"]),
        Route("/api/v1/environments/{env}/applications/{app}/promotions/{number:int}", guarded(get_promotion),
              methods=["GET"]),
        Route("/api/v1/policies", guarded(list_policies), methods=["GET"]),
    ]
