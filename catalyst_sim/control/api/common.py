"""What every area of the Catalyst API shares: the error shape, body parsing and the error guard.

Errors are JSON ``{"error": {"code", "message", "problems": [{field, object, source, message}]}}``
with 422 for invalid input, 404 for a missing object and 409 for a conflict; every problem names
the object and the field.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from catalyst_sim.clients.gitea import GiteaError
from catalyst_sim.model.base import CatalystError, Problem, problems_from_validation

STATUS_BY_CODE = {"Invalid": 422, "NotFound": 404, "Conflict": 409, "Unauthorized": 401, "Forbidden": 403,
                  "Upstream": 502}


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
