"""The cutover's API on the embedded backend: who may start it, its status, and a reset back to the
handed-over state, and its event stream (R-CUT-03, R-CUT-04, R-CUT-06), over HTTP."""

import json
from datetime import timedelta
from typing import Any

import httpx

from catalyst_sim.backends.embedded.sovereign import EmbeddedBackend
from catalyst_sim.control.sovereignty import JOB_NAMES
from catalyst_sim.harness.personas import Persona, PersonaAuth

START, STATUS = "/api/v1/sovereign/cutover/start", "/api/v1/sovereign/cutover/status"
EVENTS = "/api/v1/sovereign/cutover/events"


def sse_events(api: httpx.Client, count: int, *, last_event_id: int = 0) -> list[dict[str, Any]]:
    """The first ``count`` events of the cutover's SSE stream (after ``last_event_id``)."""
    found: list[dict[str, Any]] = []
    with api.stream("GET", EVENTS, headers={"Last-Event-ID": str(last_event_id)}, timeout=10) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data:"):
                found.append(json.loads(line.removeprefix("data:").strip()))
                if len(found) == count:
                    break
    return found






def test_the_handed_over_sovereign_is_dormant_and_listed_in_the_report(backend: EmbeddedBackend,
                                                                      api: httpx.Client) -> None:
    status = api.get(STATUS).json()
    assert status["phase"] == "Dormant" and status["cutoverComplete"] is False
    assert [(s["name"], s["state"]) for s in status["steps"]] == [(name, "Pending") for name in JOB_NAMES]
    clusters = api.get("/api/v1/sovereign/tethers").json()["clusters"]
    assert clusters and all(all(t["tethered"] for t in tethers) for tethers in clusters.values())
    assert backend.endpoints is not None and backend.endpoints.toxiproxy_url
    kinds = {c.name: c.kind for c in backend.endpoints.components}
    assert kinds["toxiproxy"] == "emulated" and kinds["oci-registries"] == "emulated"
    paths = api.get("/openapi.json").json()["paths"]
    assert "post" in paths[START] and "get" in paths[STATUS]


def test_only_a_sovereign_admin_may_start_and_skip_names_must_exist(api: httpx.Client) -> None:
    assert api.post("/api/v1/organizations", json={"name": "acme", "contact": "a@acme.example"}).status_code == 201
    auth = api.auth
    assert isinstance(auth, PersonaAuth)
    with auth.acting_as(Persona.org_admin("acme")):
        refused = api.post(START, json={})
    assert refused.status_code == 403, refused.text
    unknown = api.post(START, json={"skip": ["gitea-mirorr"]})
    assert unknown.status_code == 422
    assert unknown.json()["error"]["problems"][0]["field"] == "skip"
    assert api.post(START, json={"operator": "x"}).json()["error"]["problems"][0]["field"] == "operator"
    assert api.get(STATUS).json()["phase"] == "Dormant"


def test_a_second_start_is_refused_and_reset_brings_back_the_handed_over_state(backend: EmbeddedBackend,
                                                                                api: httpx.Client) -> None:
    assert api.post(START, json={}).status_code == 202
    second = api.post(START, json={})
    assert second.status_code == 409 and "already running" in second.json()["error"]["message"]
    backend.advance(timedelta(minutes=3))  # the first Jobs have done their work
    assert api.get(STATUS).json()["steps"][0]["state"] == "Succeeded"
    events = sse_events(api, 3)
    assert [e["type"] for e in events[:2]] == ["catalyst.cutover.started", "catalyst.cutover.step.started"]
    assert events[1]["step"] == "gitea-mirror" and [e["id"] for e in events] == [1, 2, 3]
    assert [e["id"] for e in sse_events(api, 2, last_event_id=2)] == [3, 4]  # resumed after what it saw
    assert api.get(EVENTS, headers={"Last-Event-ID": "x"}).status_code == 422
    backend.reset()
    status = api.get(STATUS).json()
    assert status["phase"] == "Dormant" and not status["running"]
    assert all(s["state"] == "Pending" for s in status["steps"])
    clusters = api.get("/api/v1/sovereign/tethers").json()["clusters"]
    assert all(all(t["tethered"] for t in tethers) for tethers in clusters.values())
