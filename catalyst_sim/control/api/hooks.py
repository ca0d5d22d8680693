"""Webhooks from the Sovereign's Gitea: HMAC-signed, so they need no user token."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TYPE_CHECKING

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from catalyst_sim.control.api.common import guarded
from catalyst_sim.control.config_store import SYSTEM_ORG
from catalyst_sim.model.base import CatalystError

if TYPE_CHECKING:
    from catalyst_sim.control.plane import ControlPlane

SCHEMAS: tuple[type[BaseModel], ...] = ()


def routes(plane: ControlPlane) -> list[BaseRoute]:
    async def gitea_webhook(request: Request) -> Response:
        """
        summary: "Gitea webhook receiver: pushes (R-GIT-03) and pull request events (R-PROMO) of every
          Organization's repos, and pushes to the system Org (policies, RE scores)"
        responses:
          204: {description: accepted}
          401: {description: bad signature}
        """
        body = await request.body()
        expected = hmac.new(plane.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("X-Gitea-Signature", "")):
            raise CatalystError.single("the webhook signature does not match", code="Unauthorized")
        event = request.headers.get("X-Gitea-Event", "")
        if event == "push":
            payload = json.loads(body)
            owner, _, repo = payload["repository"]["full_name"].partition("/")
            ref = payload.get("ref", "")
            if owner == SYSTEM_ORG:
                plane.promotions.system_pushed(repo)
            elif ref.startswith("refs/heads/"):
                plane.gitea_event(event, payload)  # the projector records the commit (R-GIT-03)
                plane.controller.repository_pushed(owner, repo, ref.removeprefix("refs/heads/"))
        elif event.startswith("pull_request"):
            payload = json.loads(body)
            plane.gitea_event(event, payload)  # an open PR into a branch is its card's Pending approval
            plane.promotions.pull_request_event(payload)
        return Response(status_code=204)

    return [
        Route("/api/v1/hooks/gitea", guarded(gitea_webhook), methods=["POST"]),
    ]
