"""Self-sovereignty: start the dormant cutover and follow it (ARCHITECTURE.md §11.1, ADR-0002, R-CUT, R-DOD).

Starting is Sovereign-wide, so only a ``sovereign-admin`` may do it (the auth middleware derives that for a
write without an Organization or Environment in the path). The status is the cutover's status ConfigMap as
the control plane reads it: every Job's state and message, and ``cutoverComplete``, true only once the
egress block held (R-DOD-03). Its events (started, each Job's start, progress, success or failure, the
proof's samples, completed) stream as Server-Sent Events, resumable with ``Last-Event-ID`` (R-CUT-04).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from catalyst_sim.control.api.auth import principal_of
from catalyst_sim.control.api.common import Body, guarded, parse_body
from catalyst_sim.control.sovereignty import JOB_NAMES, CutoverConflict, Sovereignty
from catalyst_sim.model.base import CatalystError, ConflictError, NotFoundError

if TYPE_CHECKING:
    from catalyst_sim.control.plane import ControlPlane

CUTOVER = "SelfSovereignCutover"


class CutoverStartBody(Body):
    skip: list[str] = Field(default_factory=list, description=(
        "a drill: cutover Jobs to leave out, by name (" + ", ".join(JOB_NAMES) + "); the egress-block test "
        "then fails naming the tether still attached (R-DOD)"))


SCHEMAS: tuple[type[BaseModel], ...] = (CutoverStartBody,)


def routes(plane: ControlPlane) -> list[BaseRoute]:
    def sovereignty() -> Sovereignty:
        if plane.sovereignty is None:
            raise NotFoundError("this Sovereign has no self-sovereignty cutover: it was not handed over from a "
                                "mothership (ADR-0002)", object=CUTOVER)
        return plane.sovereignty

    async def start_cutover(request: Request) -> Response:
        """
        summary: Start the self-sovereignty cutover (R-CUT-04)
        description: >-
          Turns the dormant bp-self-sovereign-cutover into its eight Jobs, run strictly in order; the last
          blocks egress to the mothership for 10 minutes and sets cutoverComplete only if everything stayed
          green. Only a sovereign-admin may start it; it runs once at a time and cannot be undone.
        requestBody: {content: {application/json: {schema: {$ref: '#/components/schemas/CutoverStartBody'}}}}
        responses:
          202: {description: "the cutover started: its status (phase Running)"}
          401: {description: no valid access token}
          403: {description: the caller is not a sovereign-admin}
          404: {description: this Sovereign has no cutover (not handed over from a mothership)}
          409: {description: a cutover is already running, or the cutover is complete}
          422: {description: an unknown Job name in skip}
        """
        target = sovereignty()
        body = await parse_body(request, CutoverStartBody, CUTOVER)
        try:
            status = await target.start_cutover(principal_of(request).user, list(body.skip))
        except CutoverConflict as exc:
            raise ConflictError(str(exc), object=CUTOVER) from exc
        except ValueError as exc:
            raise CatalystError.single(str(exc), object=CUTOVER, field="skip") from exc
        return JSONResponse({**status, "running": True}, status_code=202)

    async def cutover_status(request: Request) -> Response:
        """
        summary: The cutover's progress, from its status ConfigMap (R-CUT-06)
        responses:
          200: {description: "phase, currentStep, percent, error, cutoverComplete, and per Job its state and message"}
          404: {description: this Sovereign has no cutover}
        """
        return JSONResponse(await run_in_threadpool(sovereignty().status))

    async def tethers(request: Request) -> Response:
        """
        summary: The eight tethers of ADR-0002 per handed-over cluster, and whether each is still attached
        responses:
          200: {description: "{clusters: {name: [{number, name, phase, pivotedBy, tethered, evidence}]}}"}
          404: {description: this Sovereign has no cutover}
        """
        return JSONResponse({"clusters": await run_in_threadpool(sovereignty().tethers)})

    async def cutover_events(request: Request) -> Response:
        """
        summary: The cutover's events as Server-Sent Events, resumable with Last-Event-ID (R-CUT-04)
        responses:
          200: {description: "text/event-stream; each event's id is its sequence number, data the event as JSON"}
          404: {description: this Sovereign has no cutover}
          422: {description: a Last-Event-ID that is not a sequence number}
        """
        target = sovereignty()
        last = request.headers.get("last-event-id", "0").strip() or "0"
        if not last.isdigit():
            raise CatalystError.single(f"Last-Event-ID {last!r} is not an event sequence number", object=CUTOVER,
                                       field="Last-Event-ID")
        queue = target.listen()  # before the backlog is read: an event published in between comes twice, once sent
        backlog = [event for event in list(target.events) if event["id"] > int(last)]

        async def stream() -> AsyncIterator[dict[str, Any]]:
            sent = int(last)
            try:
                for event in backlog:
                    sent = event["id"]
                    yield {"id": str(event["id"]), "event": event["type"], "data": json.dumps(event)}
                while True:
                    event = await queue.get()
                    if event["id"] > sent:
                        sent = event["id"]
                        yield {"id": str(event["id"]), "event": event["type"], "data": json.dumps(event)}
            finally:
                target.unlisten(queue)

        return EventSourceResponse(stream(), ping=5)

    return [
        Route("/api/v1/sovereign/cutover/events", guarded(cutover_events), methods=["GET"]),
        Route("/api/v1/sovereign/cutover/start", guarded(start_cutover), methods=["POST"]),
        Route("/api/v1/sovereign/cutover/status", guarded(cutover_status), methods=["GET"]),
        Route("/api/v1/sovereign/tethers", guarded(tethers), methods=["GET"]),
    ]
