"""Credentials of an Application in an Environment: see their version, force-rotate them (R-SEC-02, R-SEC-05).

The values never pass through the API (R-SEC-02: never printed): a rotation writes a generated new version
straight into every region's OpenBao, External Secrets brings it into the vclusters at its next refresh,
Reloader rolls the pods, and the previous version stays readable for the 24 h grace window, then OpenBao
destroys it. Who may force-rotate (the security officer, R-SEC-05) is decided by the API's authorization.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from catalyst_sim.control.api.common import guarded
from catalyst_sim.control.gitops.conditions import rfc3339
from catalyst_sim.control.secrets import Rotation, SecretsService, credentials_path
from catalyst_sim.model.base import CatalystError, NotFoundError, Problem

if TYPE_CHECKING:
    from catalyst_sim.control.plane import ControlPlane

SCHEMAS: tuple[type[BaseModel], ...] = ()


def _rotation(rotation: Rotation | None) -> dict[str, Any] | None:
    if rotation is None:
        return None
    return {"version": rotation.version, "previousVersion": rotation.previous,
            "rotatedAt": rfc3339(rotation.rotated_at), "previousValidUntil": rfc3339(rotation.grace_until)}


def routes(plane: ControlPlane) -> list[BaseRoute]:
    def target(request: Request) -> tuple[SecretsService, str]:
        """The secrets service and the OpenBao path of the App's credentials in this Environment."""
        env = plane.environments.get(request.path_params["env"])
        app = request.path_params["app"]
        org = env.spec.organization
        if app not in plane.application_names(org):
            raise NotFoundError(f"no Application {app!r} in Organization {org!r}", object=f"Application/{app}")
        if plane.secrets is None:
            raise CatalystError([Problem("this Sovereign runs no OpenBao: there are no credentials to rotate",
                                         object=f"Application/{app}")], code="Upstream")
        return plane.secrets.service, credentials_path(org, env.spec.envType, app)

    async def show_credentials(request: Request) -> Response:
        """
        summary: The App's credentials in this Environment, without values (R-SEC-05)
        responses:
          200: {description: "{path, lastRotation}"}
          404: {description: no such Environment or Application}
        """
        service, path = target(request)
        return JSONResponse({"path": path, "lastRotation": _rotation(service.rotations.get(path))})

    async def rotate_credentials(request: Request) -> Response:
        """
        summary: Force-rotate the App's credentials in this Environment (R-SEC-05); values are never returned
        responses:
          200: {description: "{path, rotation: {version, previousVersion, rotatedAt, previousValidUntil}}"}
          404: {description: no such Environment or Application, or no credentials in OpenBao yet}
          502: {description: OpenBao did not take the new version}
        """
        service, path = target(request)
        try:
            rotation = await run_in_threadpool(service.rotate, path)
        except LookupError as exc:
            raise NotFoundError(str(exc), object=f"Application/{request.path_params['app']}") from None
        return JSONResponse({"path": path, "rotation": _rotation(rotation)})

    base = "/api/v1/environments/{env}/applications/{app}/credentials"
    return [
        Route(base, guarded(show_credentials), methods=["GET"]),
        Route(f"{base}/rotate", guarded(rotate_credentials), methods=["POST"]),
    ]
